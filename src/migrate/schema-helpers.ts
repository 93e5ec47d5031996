import type { Change, IndexDefinition, Query, SchemaHelpers, TableDefinition } from './types.js'

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/

/** Quotes a schema identifier; migration names are constants, so anything unusual is a bug. */
export function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain identifier: ${JSON.stringify(name)}`)
  return `"${name}"`
}

/**
 * Builds the idempotent helpers over a query function. Every helper looks in the
 * catalog first (PostgreSQL has no IF NOT EXISTS for constraints), creates what is
 * missing and pushes a {@link Change} onto `changes`.
 */
export function createSchemaHelpers(query: Query, changes: Change[]): SchemaHelpers {
  const note = (change: Change): Change => {
    changes.push(change)
    return change
  }

  const tableExists = async (table: string) =>
    (
      await query(
        `SELECT 1 FROM pg_class
          WHERE relname = $1 AND relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')`,
        [table],
      )
    ).rowCount === 1

  const ensureColumn = async (table: string, column: string, definition: string) => {
    const found = await query(
      `SELECT 1 FROM pg_attribute
        WHERE attrelid = to_regclass(quote_ident($1)) AND attname = $2 AND NOT attisdropped`,
      [table, column],
    )
    if (found.rowCount === 1) return note({ object: `${table}.${column}`, action: 'exists' })
    await query(
      `ALTER TABLE ${ident(table)} ADD COLUMN IF NOT EXISTS ${ident(column)} ${definition}`,
    )
    return note({ object: `${table}.${column}`, action: 'created' })
  }

  const ensureConstraint = async (table: string, name: string, definition: string) => {
    const found = await query(
      'SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(quote_ident($1)) AND conname = $2',
      [table, name],
    )
    if (found.rowCount === 1) return note({ object: name, action: 'exists' })
    await query(`ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(name)} ${definition}`)
    return note({ object: name, action: 'created' })
  }

  return {
    async ensureTable(name: string, table: TableDefinition) {
      const constraints = Object.entries(table.constraints ?? {})
      if (!(await tableExists(name))) {
        const parts = [
          ...Object.entries(table.columns).map(([col, def]) => `${ident(col)} ${def}`),
          ...constraints.map(([cname, def]) => `CONSTRAINT ${ident(cname)} ${def}`),
        ]
        await query(`CREATE TABLE IF NOT EXISTS ${ident(name)} (\n  ${parts.join(',\n  ')}\n)`)
        return [note({ object: name, action: 'created' })]
      }
      // The table is there: a hand-made or half-applied one may still lack a column or constraint.
      const result: Change[] = [note({ object: name, action: 'exists' })]
      const sub: Change[] = []
      const inner = createSchemaHelpers(query, sub)
      for (const [col, def] of Object.entries(table.columns))
        await inner.ensureColumn(name, col, def)
      for (const [cname, def] of constraints) await inner.ensureConstraint(name, cname, def)
      for (const change of sub) if (change.action !== 'exists') result.push(note(change))
      return result
    },

    ensureColumn,
    ensureConstraint,

    async ensureIndex(name: string, index: IndexDefinition) {
      const found = await query<{ valid: boolean }>(
        `SELECT i.indisvalid AS valid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
          WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`,
        [name],
      )
      const concurrently = index.concurrently ? ' CONCURRENTLY' : ''
      const existing = found.rows[0]
      if (existing?.valid) return note({ object: name, action: 'exists' })
      if (existing) {
        // A CREATE INDEX CONCURRENTLY that was killed leaves an INVALID index behind: rebuild it.
        await query(`DROP INDEX${concurrently} IF EXISTS ${ident(name)}`)
      }
      const unique = index.unique ? 'UNIQUE ' : ''
      await query(
        `CREATE ${unique}INDEX${concurrently} IF NOT EXISTS ${ident(name)} ON ${ident(index.table)} ${index.definition}`,
      )
      return note({ object: name, action: existing ? 'repaired' : 'created' })
    },

    record(change: Change) {
      note(change)
    },
  }
}
