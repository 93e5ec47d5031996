import type { Change, IndexDefinition, Query, SchemaHelpers, TableDefinition } from './types.js'

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/

/** Quotes a schema identifier; migration names are constants, so anything unusual is a bug. */
export function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain identifier: ${JSON.stringify(name)}`)
  return `"${name}"`
}

/** A column definition's `DEFAULT <expression>`, up to the next clause. */
const DEFAULT_CLAUSE =
  /\bDEFAULT\s+(.+?)\s*(?=\bNOT\s+NULL\b|\bNULL\b|\bCHECK\b|\bREFERENCES\b|\bUNIQUE\b|\bPRIMARY\s+KEY\b|\bCONSTRAINT\b|$)/i
const NOT_NULL = /\bNOT\s+NULL\b/i

/** `PRIMARY KEY (a, b)` or `UNIQUE (a)`: constraints that come with an index of their name. */
const KEY_CONSTRAINT = /^(PRIMARY KEY|UNIQUE)\s*\(([^()]+)\)$/i

/** SQL: the column names of the index `oid`, in key order (NULL for an expression). */
const KEY_COLUMNS = (oid: string) =>
  `(SELECT array_agg(ka.attname::text ORDER BY kk.n)
      FROM pg_index kx
     CROSS JOIN LATERAL unnest(kx.indkey::int2[]) WITH ORDINALITY AS kk(attnum, n)
      LEFT JOIN pg_attribute ka ON ka.attrelid = kx.indrelid AND ka.attnum = kk.attnum
     WHERE kx.indexrelid = ${oid} AND kk.n <= kx.indnkeyatts)`

interface RelationInfo {
  name: string
  /** pg_class.relkind: `i` index, `r` table, `S` sequence, `v` view... */
  kind: string
  /** For an index: its table, uniqueness, validity, whether it is plain (no predicate or expression), owned by a constraint. */
  table: string | null
  unique: boolean | null
  valid: boolean | null
  plain: boolean | null
  owned: boolean
  columns: string[] | null
}

const RELATION_KINDS: Record<string, string> = {
  r: 'table',
  p: 'partitioned table',
  v: 'view',
  m: 'materialized view',
  S: 'sequence',
  f: 'foreign table',
  c: 'type',
}

function describeRelation(r: RelationInfo): string {
  if (r.kind !== 'i' && r.kind !== 'I') return `a ${RELATION_KINDS[r.kind] ?? 'relation'}`
  const what = r.owned ? "a constraint's index" : r.unique ? 'a unique index' : 'an index'
  return `${what} on ${r.table} (${(r.columns ?? []).join(', ')})`
}

const sameColumns = (a: string[], b: string[]) =>
  a.length === b.length && a.every((c, i) => c === b[i])

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
          WHERE relname = $1 AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND relkind IN ('r', 'p')`,
        [table],
      )
    ).rowCount === 1

  const ensureColumn = async (table: string, column: string, definition: string) => {
    const found = await query<{ notNull: boolean; hasDefault: boolean }>(
      `SELECT attnotnull AS "notNull", atthasdef AS "hasDefault" FROM pg_attribute
        WHERE attrelid = to_regclass(quote_ident($1)) AND attname = $2 AND NOT attisdropped`,
      [table, column],
    )
    const existing = found.rows[0]
    if (existing) return note(await completeColumn(table, column, definition, existing))
    await query(
      `ALTER TABLE ${ident(table)} ADD COLUMN IF NOT EXISTS ${ident(column)} ${definition}`,
    )
    return note({ object: `${table}.${column}`, action: 'created' })
  }

  /**
   * A column added by hand may lack its NOT NULL or DEFAULT (`ADD COLUMN is_active
   * boolean`): both are added, as the chain would have. NULLs already there are not
   * guessed at: the run stops and says how many. The type is not compared (changing
   * it could lose data); the drift report names a difference.
   */
  const completeColumn = async (
    table: string,
    column: string,
    definition: string,
    existing: { notNull: boolean; hasDefault: boolean },
  ): Promise<Change> => {
    const object = `${table}.${column}`
    const set: string[] = []
    const wantedDefault = DEFAULT_CLAUSE.exec(definition)?.[1]
    if (wantedDefault !== undefined && !existing.hasDefault) {
      await query(
        `ALTER TABLE ${ident(table)} ALTER COLUMN ${ident(column)} SET DEFAULT ${wantedDefault}`,
      )
      set.push('default')
    }
    if (NOT_NULL.test(definition) && !existing.notNull) {
      const { rows } = await query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${ident(table)} WHERE ${ident(column)} IS NULL`,
      )
      const nulls = rows[0]?.n ?? 0
      if (nulls > 0) {
        throw new Error(
          `${object} exists without NOT NULL and ${nulls} rows hold NULL there; the chain defines it as "${definition}": set those rows by hand`,
        )
      }
      await query(`ALTER TABLE ${ident(table)} ALTER COLUMN ${ident(column)} SET NOT NULL`)
      set.push('not null')
    }
    return set.length > 0
      ? { object, action: 'repaired', detail: { set } }
      : { object, action: 'exists' }
  }

  const ensureConstraint = async (table: string, name: string, definition: string) => {
    const found = await query(
      'SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(quote_ident($1)) AND conname = $2',
      [table, name],
    )
    if (found.rowCount === 1) return note({ object: name, action: 'exists' })
    const keyed = KEY_CONSTRAINT.exec(definition.trim())
    if (keyed) {
      // A key's index takes the constraint's name: what a hand fix may have left in its place.
      const kind = keyed[1]?.toUpperCase() === 'PRIMARY KEY' ? 'p' : 'u'
      const columns = (keyed[2] ?? '').split(',').map((c) => c.trim().replace(/^"|"$/g, ''))
      const repaired = await adoptKey(table, name, kind, columns)
      if (repaired) return note(repaired)
    }
    await query(`ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(name)} ${definition}`)
    return note({ object: name, action: 'created' })
  }

  /**
   * Before adding key constraint `name` on `table`: the same key under another name (a
   * primary key named by hand) is renamed; a unique index of that name with those columns
   * becomes the constraint. Anything else in the way is an error that says what it is,
   * instead of PostgreSQL's "already exists" or "multiple primary keys".
   */
  const adoptKey = async (
    table: string,
    name: string,
    kind: 'p' | 'u',
    columns: string[],
  ): Promise<Change | null> => {
    if (kind === 'p') {
      const pk = (
        await query<{ name: string; columns: string[] }>(
          `SELECT k.conname AS name, ${KEY_COLUMNS('k.conindid')} AS columns
             FROM pg_constraint k
            WHERE k.conrelid = to_regclass(quote_ident($1)) AND k.contype = 'p'`,
          [table],
        )
      ).rows[0]
      if (pk) {
        if (!sameColumns(pk.columns, columns)) {
          throw new Error(
            `${table} already has a primary key, ${pk.name} on (${pk.columns.join(', ')}), not the chain's ${name} on (${columns.join(', ')}): drop or change it by hand`,
          )
        }
        await query(
          `ALTER TABLE ${ident(table)} RENAME CONSTRAINT ${ident(pk.name)} TO ${ident(name)}`,
        )
        return { object: name, action: 'repaired', detail: { renamedFrom: pk.name } }
      }
    }
    const other = await relationNamed(name)
    if (!other) return null
    const adoptable =
      kind === 'u' &&
      other.table === table &&
      other.unique &&
      other.valid &&
      other.plain &&
      !other.owned &&
      sameColumns(other.columns ?? [], columns)
    if (!adoptable) {
      throw new Error(
        `${name} is needed for a ${kind === 'p' ? 'primary key' : 'unique constraint'} on ${table} (${columns.join(', ')}), but ${describeRelation(other)} has that name: rename or drop it by hand`,
      )
    }
    await query(
      `ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(name)} UNIQUE USING INDEX ${ident(name)}`,
    )
    return { object: name, action: 'repaired', detail: { fromIndex: name } }
  }

  /** The relations of those names in the current schema, with what an index of that name is. */
  const relationsNamed = async (names: string[]) =>
    (
      await query<RelationInfo>(
        `SELECT c.relname AS name, c.relkind AS kind, t.relname AS table, i.indisunique AS unique,
                i.indisvalid AS valid, (i.indpred IS NULL AND i.indexprs IS NULL) AS plain,
                EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) AS owned,
                ${KEY_COLUMNS('c.oid')} AS columns
           FROM pg_class c
           LEFT JOIN pg_index i ON i.indexrelid = c.oid
           LEFT JOIN pg_class t ON t.oid = i.indrelid
          WHERE c.relname = ANY($1) AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`,
        [names],
      )
    ).rows
  const relationNamed = async (name: string) => (await relationsNamed([name]))[0] ?? null

  return {
    async ensureTable(name: string, table: TableDefinition) {
      const constraints = Object.entries(table.constraints ?? {})
      if (!(await tableExists(name))) {
        // The table's name and its keys' (each comes with an index of that name) must be
        // free: CREATE TABLE IF NOT EXISTS would skip a view of that name without a word.
        const keys = constraints.filter(([, def]) => KEY_CONSTRAINT.test(def.trim()))
        const [other] = await relationsNamed([name, ...keys.map(([cname]) => cname)])
        if (other) {
          const role = other.name === name ? 'the table' : `a key of table ${name}`
          throw new Error(
            `${other.name} is needed for ${role}, but ${describeRelation(other)} has that name: rename or drop it by hand`,
          )
        }
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
      const existing = await relationNamed(name)
      const concurrently = index.concurrently ? ' CONCURRENTLY' : ''
      if (existing && (existing.table !== index.table || existing.owned)) {
        // Index names share one namespace with tables and constraints' indexes: ours cannot
        // be built, and one of that name elsewhere does nothing for this table.
        throw new Error(
          `index ${name} is needed on ${index.table}, but ${describeRelation(existing)} has that name: rename or drop it by hand`,
        )
      }
      // `(a, b) WHERE …` names its columns; an expression index is left to the drift report.
      const listed = /^\(([^()]+)\)/.exec(index.definition.trim())?.[1]?.split(',')
      const columns = listed?.map((c) => c.trim().replace(/^"|"$/g, ''))
      const fits =
        existing?.valid &&
        existing.unique === (index.unique === true) &&
        (columns === undefined ||
          !columns.every((c) => /^[a-z_][a-z0-9_]*$/.test(c)) ||
          sameColumns(existing.columns ?? [], columns))
      if (existing && fits) return note({ object: name, action: 'exists' })
      if (existing) {
        // A CREATE INDEX CONCURRENTLY that was killed leaves an INVALID index behind, and a
        // hand-made one may lack (or add) uniqueness: rebuild it as the chain defines it.
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
