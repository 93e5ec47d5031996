import { canonicalDefinition } from './catalog.js'
import type { Change, IndexDefinition, Query, SchemaHelpers, TableDefinition } from './types.js'

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/

/** Quotes a schema identifier; migration names are constants, so anything unusual is a bug. */
export function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain identifier: ${JSON.stringify(name)}`)
  return `"${name}"`
}

/**
 * What a column definition asks of NOT NULL and DEFAULT, when it is plain enough to tell
 * without PostgreSQL's parser: a type, `NOT NULL`, `DEFAULT <expression>`, in any order.
 * Null for anything else (CHECK, REFERENCES, identity, generated, collation...): such a
 * column is left as it is found. Quoted text is masked first, so that `DEFAULT 'not null'`
 * is an expression and not a clause.
 */
export function columnClauses(
  definition: string,
): { notNull: boolean; defaultExpression: string | null } | null {
  const text = definition.trim()
  const masked = text.replace(/'(?:[^']|'')*'/g, (m) => `'${'x'.repeat(m.length - 2)}'`)
  if (/\b(?:CHECK|REFERENCES|GENERATED|IDENTITY|UNIQUE|PRIMARY|COLLATE|CONSTRAINT)\b/i.test(masked))
    return null
  const at = /\bDEFAULT\b/i.exec(masked)
  const head = at ? masked.slice(0, at.index) : masked
  let notNull = /\bNOT\s+NULL\b/i.test(head)
  let defaultExpression: string | null = null
  if (at) {
    let end = masked.length
    const trailing = /\s+(NOT\s+)?NULL\s*$/i.exec(masked.slice(at.index + at[0].length))
    if (trailing) {
      end = at.index + at[0].length + trailing.index
      if (trailing[1]) notNull = true
    }
    const expression = text.slice(at.index + at[0].length, end).trim()
    if (expression === '' && !trailing) return null // `DEFAULT` and nothing after it
    // `DEFAULT NULL` (the trailing NULL, or the whole expression): PostgreSQL stores none.
    if (expression !== '' && !/^NULL$/i.test(expression)) defaultExpression = expression
  }
  return { notNull, defaultExpression }
}

/** `PRIMARY KEY (a, b)` or `UNIQUE (a)`: constraints that come with an index of their name. */
const KEY_CONSTRAINT = /^(PRIMARY KEY|UNIQUE)\s*\(([^()]+)\)$/i
/** Constraints that come with an index of their name, whatever follows (DEFERRABLE...). */
const INDEXED_CONSTRAINT = /^(?:PRIMARY\s+KEY|UNIQUE|EXCLUDE)\b/i

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
  /** For an index: `pg_get_indexdef`. */
  definition: string | null
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

/** `a, "b"` → `['a', 'b']`: the column list of a key or an index definition. */
const columnList = (text: string) => text.split(',').map((c) => c.trim().replace(/^"|"$/g, ''))

const sameColumns = (a: string[], b: string[]) =>
  a.length === b.length && a.every((c, i) => c === b[i])

/** The temporary table on which PostgreSQL is asked how it prints the chain's definitions. */
const SHAPE = 'basketball_api_shape'

/**
 * Two printed constraints say the same thing (in their {@link canonicalDefinition}: a
 * restored dump prints some checks another way). A foreign key is compared as text, the
 * chain's written as PostgreSQL prints one (`FOREIGN KEY (a) REFERENCES t(id) ON DELETE
 * CASCADE`), with the defaults PostgreSQL leaves out dropped from both and case, quotes
 * and spacing ignored.
 */
const samePrinted = (a: string, b: string) => normalisedConstraint(a) === normalisedConstraint(b)

const normalisedConstraint = (text: string) =>
  canonicalDefinition(text)
    .replace(/"/g, '')
    .replace(/\s+/g, ' ')
    .replace(/ ?\( ?/g, '(')
    .replace(/ ?\) ?/g, ')')
    .replace(
      /\b(?:ON (?:DELETE|UPDATE) NO ACTION|MATCH SIMPLE|NOT DEFERRABLE|INITIALLY IMMEDIATE)\b/gi,
      '',
    )
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase()

/** Two `pg_get_indexdef` texts build the same index, whatever its name and table are called. */
const sameIndexBody = (a: string, b: string) => {
  const body = (text: string) => {
    const canonical = canonicalDefinition(text)
    return canonical.slice(canonical.indexOf(' USING '))
  }
  return body(a) === body(b) && a.startsWith('CREATE UNIQUE') === b.startsWith('CREATE UNIQUE')
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
    const clauses = columnClauses(definition)
    if (!clauses) return { object, action: 'exists' }
    const set: string[] = []
    const wantedDefault = clauses.defaultExpression
    if (wantedDefault !== null && !existing.hasDefault) {
      await query(
        `ALTER TABLE ${ident(table)} ALTER COLUMN ${ident(column)} SET DEFAULT ${wantedDefault}`,
      )
      set.push('default')
    }
    if (clauses.notNull && !existing.notNull) {
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
    const found = await query<{ definition: string; kind: string; validated: boolean }>(
      `SELECT pg_get_constraintdef(oid) AS definition, contype AS kind, convalidated AS validated
         FROM pg_constraint WHERE conrelid = to_regclass(quote_ident($1)) AND conname = $2`,
      [table, name],
    )
    const existing = found.rows[0]
    if (existing) return note(await checkConstraint(table, name, definition, existing))
    const keyed = KEY_CONSTRAINT.exec(definition.trim())
    if (keyed) {
      // A key's index takes the constraint's name: what a hand fix may have left in its place.
      const kind = keyed[1]?.toUpperCase() === 'PRIMARY KEY' ? 'p' : 'u'
      const columns = columnList(keyed[2] ?? '')
      const repaired = await adoptKey(table, name, kind, columns)
      if (repaired) return note(repaired)
    }
    await query(`ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(name)} ${definition}`)
    return note({ object: name, action: 'created' })
  }

  /**
   * A constraint of the chain's name is the chain's only if it says the same thing: one of
   * another kind, on other columns or with another condition (`PRIMARY KEY (player_id)`
   * for the chain's `(player_id, team_id)`) stops the run here, naming both, rather than
   * being counted as `exists` and failing some later migration that relies on it. One
   * added `NOT VALID` (the usual way to add a constraint to a big table by hand) is
   * validated: rows that break it stop the run here, with PostgreSQL naming the constraint.
   */
  const checkConstraint = async (
    table: string,
    name: string,
    definition: string,
    existing: { definition: string; kind: string; validated: boolean },
  ): Promise<Change> => {
    const actual = existing.definition.replace(/\s+NOT VALID$/, '')
    const wanted = await constraintAsPrinted(table, definition, existing.kind)
    if (wanted !== null && !samePrinted(actual, wanted)) {
      throw new Error(
        `${name} on ${table} is "${actual}", not the chain's "${definition.trim()}": drop or change it by hand`,
      )
    }
    if (existing.validated) return { object: name, action: 'exists' }
    await query(`ALTER TABLE ${ident(table)} VALIDATE CONSTRAINT ${ident(name)}`)
    return { object: name, action: 'repaired', detail: { validated: true } }
  }

  /**
   * The chain's constraint as `pg_get_constraintdef` prints it, to compare with one found:
   * PostgreSQL rewrites a condition (`BETWEEN 0 AND 99` prints as `>= 0 AND <= 99`), so it
   * is asked, on an empty temporary copy of the table's columns. A foreign key cannot be
   * added to a temporary table; its text is normalised instead (below). Null when it
   * cannot tell (no TEMP privilege: then only the kind is compared).
   */
  const constraintAsPrinted = async (
    table: string,
    definition: string,
    kind: string,
  ): Promise<string | null> => {
    const text = definition.trim()
    if (/^FOREIGN\s+KEY\b/i.test(text)) return text
    if (!(await mayUseTemp())) {
      const wantedKind = /^PRIMARY\s+KEY\b/i.test(text)
        ? 'p'
        : /^UNIQUE\b/i.test(text)
          ? 'u'
          : /^CHECK\b/i.test(text)
            ? 'c'
            : /^EXCLUDE\b/i.test(text)
              ? 'x'
              : kind
      return wantedKind === kind ? null : `a constraint of kind ${wantedKind}`
    }
    return printedOnTemp(
      table,
      `ALTER TABLE pg_temp.${SHAPE} ADD CONSTRAINT ${SHAPE}_c ${text}`,
      `SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
        WHERE conrelid = 'pg_temp.${SHAPE}'::regclass`,
    )
  }

  /** Runs `build` on an empty temporary copy of `table`'s columns and returns what `read` prints. */
  const printedOnTemp = async (table: string, build: string, read: string) => {
    const drop = `DROP TABLE IF EXISTS pg_temp.${SHAPE}`
    // One round trip; the temporary table is gone at its end, whatever happened.
    const results = await query<{ definition: string }>(
      `${drop}; CREATE TEMPORARY TABLE ${SHAPE} (LIKE ${ident(table)}); ${build}; ${read}; ${drop}`,
    )
    const rows = [results]
      .flat()
      .flatMap((r) => (r as { rows?: Array<{ definition?: string }> }).rows ?? [])
    return rows.find((r) => typeof r.definition === 'string')?.definition ?? null
  }

  let tempAllowed: Promise<boolean> | undefined
  const mayUseTemp = () => {
    tempAllowed ??= query<{ ok: boolean }>(
      "SELECT has_database_privilege(current_database(), 'TEMPORARY') AS ok",
    ).then((r) => r.rows[0]?.ok === true)
    return tempAllowed
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
        const taken = await relationNamed(name)
        if (taken) {
          throw new Error(
            `${table}'s primary key ${pk.name} should be named ${name}, but ${describeRelation(taken)} has that name: rename or drop it by hand`,
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
    try {
      await query(
        `ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(name)} UNIQUE USING INDEX ${ident(name)}`,
      )
    } catch (err) {
      // A descending column, another operator class or collation: PostgreSQL says no.
      throw new Error(
        `${name} is needed for a unique constraint on ${table} (${columns.join(', ')}), and the unique index of that name cannot become it (${(err as Error).message}): rename or drop it by hand`,
        { cause: err },
      )
    }
    return { object: name, action: 'repaired', detail: { fromIndex: name } }
  }

  /** The relations of those names in the current schema, with what an index of that name is. */
  const relationsNamed = async (names: string[]) =>
    (
      await query<RelationInfo>(
        `SELECT c.relname AS name, c.relkind AS kind, t.relname AS table, i.indisunique AS unique,
                i.indisvalid AS valid, (i.indpred IS NULL AND i.indexprs IS NULL) AS plain,
                EXISTS (SELECT 1 FROM pg_constraint k
                         WHERE k.conindid = c.oid AND k.contype IN ('p', 'u', 'x')) AS owned,
                ${KEY_COLUMNS('c.oid')} AS columns,
                CASE WHEN i.indexrelid IS NOT NULL THEN pg_get_indexdef(c.oid) END AS definition
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
      // The table, and what holds the names a new table's keys would take (each comes with
      // an index of that name), in one read.
      const keys = constraints.filter(([, def]) => INDEXED_CONSTRAINT.test(def.trim()))
      const found = await relationsNamed([name, ...keys.map(([cname]) => cname)])
      const self = found.find((r) => r.name === name)
      if (self?.kind !== 'r' && self?.kind !== 'p') {
        // Every name must be free: CREATE TABLE IF NOT EXISTS would skip a view of that
        // name without a word.
        const [other] = found
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
      const listed = /^\(([^()]+)\)/.exec(index.definition.trim())?.[1]
      const columns = listed === undefined ? undefined : columnList(listed)
      const unique = index.unique ? 'UNIQUE ' : ''
      let fits =
        existing?.valid &&
        existing.unique === (index.unique === true) &&
        (columns === undefined ||
          !columns.every((c) => /^[a-z_][a-z0-9_]*$/.test(c)) ||
          sameColumns(existing.columns ?? [], columns))
      if (existing && fits && existing.definition !== null && (await mayUseTemp())) {
        // Also its method, order, predicate (a partial unique index on other rows keeps
        // nothing unique where the chain's does) and expressions: as PostgreSQL prints them.
        const wanted = await printedOnTemp(
          index.table,
          `CREATE ${unique}INDEX ${SHAPE}_i ON pg_temp.${SHAPE} ${index.definition}`,
          `SELECT pg_get_indexdef('pg_temp.${SHAPE}_i'::regclass) AS definition`,
        )
        fits = wanted === null || sameIndexBody(existing.definition, wanted)
      }
      if (existing && fits) return note({ object: name, action: 'exists' })
      if (existing?.valid && index.concurrently) {
        // A working index that is not the chain's: build the chain's beside it, then swap.
        // Outside a transaction, dropping first would leave no index at all (or an INVALID
        // one) when the build fails on the data, on every retry.
        const temp = `${name.slice(0, 55)}_rebuild`
        await query(`DROP INDEX CONCURRENTLY IF EXISTS ${ident(temp)}`)
        try {
          await query(
            `CREATE ${unique}INDEX CONCURRENTLY ${ident(temp)} ON ${ident(index.table)} ${index.definition}`,
          )
        } catch (err) {
          await query(`DROP INDEX CONCURRENTLY IF EXISTS ${ident(temp)}`).catch(() => {})
          throw err
        }
        await query(`DROP INDEX CONCURRENTLY ${ident(name)}`)
        await query(`ALTER INDEX ${ident(temp)} RENAME TO ${ident(name)}`)
        return note({ object: name, action: 'repaired' })
      }
      if (existing) {
        // A CREATE INDEX CONCURRENTLY that was killed leaves an INVALID index behind, and a
        // hand-made one may lack (or add) uniqueness: rebuild it as the chain defines it.
        await query(`DROP INDEX${concurrently} IF EXISTS ${ident(name)}`)
      }
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
