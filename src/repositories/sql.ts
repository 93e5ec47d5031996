import type { Pool } from 'pg'

/** What a repository needs from the pool (a pool or a checked-out client). */
export type Queryable = Pick<Pool, 'query'>

/**
 * `SET` assignments for the fields present in a PATCH body. Column names come
 * only from `columns` (a fixed map), values only travel as parameters, numbered
 * from `firstParam`; `expressions` gives a field's value an expression around its
 * parameter (a fixed one too).
 */
export function assignments<K extends string>(
  columns: Record<K, string>,
  changes: Partial<Record<K, unknown>>,
  firstParam: number,
  expressions: Partial<Record<K, (param: string) => string>> = {},
): { sql: string; values: unknown[] } {
  const sets: string[] = []
  const values: unknown[] = []
  for (const [field, column] of Object.entries(columns) as [K, string][]) {
    if (changes[field] === undefined) continue
    values.push(changes[field])
    const param = `$${firstParam + values.length - 1}`
    sets.push(`${column} = ${expressions[field]?.(param) ?? param}`)
  }
  return { sql: sets.join(', '), values }
}
