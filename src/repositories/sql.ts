import type { Pool } from 'pg'

/** What a repository needs from the pool (a pool or a checked-out client). */
export type Queryable = Pick<Pool, 'query'>

/**
 * `SET` assignments for the fields present in a PATCH body. Column names come
 * only from `columns` (a fixed map), values only travel as parameters, numbered
 * from `firstParam`.
 */
export function assignments<K extends string>(
  columns: Record<K, string>,
  changes: Partial<Record<K, unknown>>,
  firstParam: number,
): { sql: string; values: unknown[] } {
  const sets: string[] = []
  const values: unknown[] = []
  for (const [field, column] of Object.entries(columns) as [K, string][]) {
    if (changes[field] === undefined) continue
    values.push(changes[field])
    sets.push(`${column} = $${firstParam + values.length - 1}`)
  }
  return { sql: sets.join(', '), values }
}
