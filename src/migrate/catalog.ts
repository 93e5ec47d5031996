import type { ClientBase } from 'pg'
import { LEDGER_TABLE } from './ledger.js'

/**
 * The schema as the catalog describes it, in a form that compares with `==`:
 * tables and their columns (type, nullability, default), constraints and
 * indexes by definition. Column order is left out: ALTER TABLE appends, so two
 * equal schemas can differ in it.
 */
export interface SchemaSnapshot {
  columns: string[]
  constraints: string[]
  indexes: string[]
}

const IGNORED = [LEDGER_TABLE, 'alembic_version']

/**
 * Tables an extension owns (PostGIS's `spatial_ref_sys` in `public`, say) are the
 * extension's, not the chain's: left out, with their constraints and indexes.
 */
const NOT_EXTENSION_MEMBER = (oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e
                WHERE e.classid = 'pg_class'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`

export async function schemaSnapshot(client: Pick<ClientBase, 'query'>): Promise<SchemaSnapshot> {
  // One after another: a pg client runs one query at a time.
  const columns = await client.query<{ line: string }>(
    `SELECT format('%s.%s %s%s%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                     CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                     coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')) AS line
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND a.attnum > 0
          AND NOT a.attisdropped AND c.relname <> ALL($1) AND ${NOT_EXTENSION_MEMBER('c.oid')}
        ORDER BY 1`,
    [IGNORED],
  )
  const constraints = await client.query<{ line: string }>(
    `SELECT format('%s %s %s', c.relname, k.conname, pg_get_constraintdef(k.oid)) AS line
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relname <> ALL($1)
          AND k.contype <> 'n' AND ${NOT_EXTENSION_MEMBER('c.oid')}
        ORDER BY 1`,
    [IGNORED],
  )
  const indexes = await client.query<{ line: string }>(
    `SELECT format('%s%s', pg_get_indexdef(i.indexrelid),
                     CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END) AS line
         FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND t.relname <> ALL($1)
          AND ${NOT_EXTENSION_MEMBER('t.oid')}
        ORDER BY 1`,
    [IGNORED],
  )
  return {
    columns: columns.rows.map((r) => r.line),
    constraints: constraints.rows.map((r) => r.line),
    indexes: indexes.rows.map((r) => r.line),
  }
}

const LITERAL = String.raw`'(?:[^']|'')*'::[a-z][a-z ]*[a-z](?:\(\d+(?:,\d+)?\))?`
const TYPE = '[a-z][a-z ]*[a-z]'
const CAST_ARRAY = new RegExp(
  String.raw`\(ARRAY\[(${LITERAL}(?:, ${LITERAL})*)\]\)::(${TYPE})\[\]`,
  'g',
)
const ONE_LITERAL = new RegExp(LITERAL, 'g')
// `CREATE [UNIQUE] INDEX name ON [ONLY] schema.`: pg_get_indexdef always names the
// table's schema, and only the current schema is ever compared.
const INDEX_SCHEMA =
  /^(CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")+"|\S+) ON (?:ONLY )?)(?:"(?:[^"]|"")+"|[^\s".]+)\./

/**
 * One spelling for a definition PostgreSQL prints two ways, so that neither is drift.
 * `CHECK (status IN ('a', 'b'))` on a varchar column prints as `... = ANY ((ARRAY['a'::
 * character varying, ...])::text[])`; that text read back, which is what restoring a
 * pg_dump does, prints with the casts inside the array: `... = ANY (ARRAY[('a'::character
 * varying)::text, ...])`. The first is rewritten to the second. And an index's table
 * loses its schema (`ON public.players` and `ON club.players` are the same here).
 */
export function canonicalDefinition(line: string): string {
  return line
    .replace(INDEX_SCHEMA, '$1')
    .replace(CAST_ARRAY, (_, elements: string, type: string) => {
      const casts = (elements.match(ONE_LITERAL) ?? []).map((e) => `(${e})::${type}`)
      return `ARRAY[${casts.join(', ')}]`
    })
}

/**
 * What differs between the schema the chain produces and the live one, one line per
 * object, as the catalog prints it; lines compare in their {@link canonicalDefinition}.
 */
export function diffSnapshots(expected: SchemaSnapshot, actual: SchemaSnapshot): string[] {
  const out: string[] = []
  const kinds = { columns: 'column', constraints: 'constraint', indexes: 'index' } as const
  for (const [key, kind] of Object.entries(kinds) as [keyof typeof kinds, string][]) {
    // Canonical spelling -> the line as printed, each line canonicalised once.
    const want = new Map(expected[key].map((line) => [canonicalDefinition(line), line]))
    const have = new Map(actual[key].map((line) => [canonicalDefinition(line), line]))
    for (const [canonical, line] of want) {
      if (!have.has(canonical)) out.push(`missing ${kind}: ${line}`)
    }
    for (const [canonical, line] of have) {
      if (!want.has(canonical)) out.push(`unexpected ${kind}: ${line}`)
    }
  }
  return out
}
