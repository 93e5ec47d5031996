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

/** SQL: the names of the attributes `attnums` (an int2[]) of relation `rel`, in their order. */
const ATTRIBUTE_NAMES = (rel: string, attnums: string) =>
  `(SELECT array_agg(a.attname::text ORDER BY n.n)
      FROM unnest(${attnums}) WITH ORDINALITY AS n(attnum, n)
      JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = n.attnum)`

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
  /** For a partial index: its `WHERE`, as PostgreSQL prints it. */
  predicate: string | null
  /** For an index: its access method (btree, gist...). */
  method: string | null
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

/** What a constraint definition asks for, as far as it can be told without PostgreSQL's parser. */
export interface ConstraintShape {
  /** pg_constraint.contype: primary key, unique, check, foreign key, exclusion. */
  kind: 'p' | 'u' | 'c' | 'f' | 'x'
  /** The key's (or the foreign key's own) columns, when the definition lists them. */
  columns?: string[]
  /**
   * A foreign key's table (without its schema), its columns when listed, and its
   * pg_constraint codes: confdeltype, confupdtype, confmatchtype.
   */
  references?: {
    table: string
    columns?: string[]
    onDelete: string
    onUpdate: string
    match: string
  }
  /** condeferrable and condeferred. */
  deferrable: boolean
  deferred: boolean
  /** Not `NOT ENFORCED` (PostgreSQL 18's conenforced). */
  enforced: boolean
}

/** pg_constraint.contype by a definition's first word. */
const KIND: Record<string, ConstraintShape['kind']> = {
  PRIMARY: 'p',
  UNIQUE: 'u',
  CHECK: 'c',
  EXCLUDE: 'x',
  FOREIGN: 'f',
}

const ACTION: Record<string, string> = {
  'NO ACTION': 'a',
  RESTRICT: 'r',
  CASCADE: 'c',
  'SET NULL': 'n',
  'SET DEFAULT': 'd',
}

/**
 * A definition read as PostgreSQL's lexer would, as two texts of its length: `code`, with
 * comments (`-- …`, nested `/* … *\/`) blanked, and `masked`, with the insides of string
 * literals (`'…'`, `E'…'` with backslash escapes, `$tag$…$tag$`) and of quoted identifiers
 * blanked too, for keyword searches. `literals` are the spans of the string literals.
 */
export function scanSql(text: string): {
  code: string
  masked: string
  literals: Array<[number, number]>
} {
  // UTF-16 code units, not code points: the texts keep the input's length, index for
  // index, also where a literal holding an emoji is blanked.
  const code = text.split('')
  const masked = text.split('')
  const literals: Array<[number, number]> = []
  const blank = (from: number, to: number, both: boolean) => {
    for (let k = from; k < Math.min(to, code.length); k++) {
      if (code[k] === '\n') continue
      masked[k] = ' '
      if (both) code[k] = ' '
    }
  }
  let i = 0
  const n = code.length
  while (i < n) {
    const ch = code[i] as string
    const next = code[i + 1]
    if (ch === '-' && next === '-') {
      let j = i
      while (j < n && code[j] !== '\n') j++
      blank(i, j, true)
      i = j
    } else if (ch === '/' && next === '*') {
      let depth = 0
      let j = i
      while (j < n) {
        if (code[j] === '/' && code[j + 1] === '*') {
          depth++
          j += 2
        } else if (code[j] === '*' && code[j + 1] === '/') {
          depth--
          j += 2
          if (depth === 0) break
        } else j++
      }
      blank(i, j, true)
      i = j
    } else if (ch === "'" || ch === '"') {
      const escapes =
        ch === "'" && /[eE]/.test(code[i - 1] ?? '') && !/[\p{L}\p{N}_$]/u.test(code[i - 2] ?? '')
      let j = i + 1
      while (j < n) {
        if (escapes && code[j] === '\\') j += 2
        else if (code[j] === ch && code[j + 1] === ch) j += 2
        else if (code[j] === ch) break
        else j++
      }
      blank(i + 1, j, false)
      if (ch === "'") literals.push([escapes ? i - 1 : i, Math.min(j + 1, n)])
      i = j + 1
    } else if (ch === '$' && !/[\p{L}\p{N}_$]/u.test(code[i - 1] ?? '')) {
      const tag = /^\$(?:[\p{L}_][\p{L}\p{N}_]*)?\$/u.exec(code.slice(i, i + 64).join(''))?.[0]
      if (!tag) {
        i++
        continue
      }
      const end = code.join('').indexOf(tag, i + tag.length)
      const j = end === -1 ? n : end + tag.length
      blank(i + tag.length, j - tag.length, false)
      literals.push([i, j])
      i = j
    } else i++
  }
  return { code: code.join(''), masked: masked.join(''), literals }
}

/**
 * `a, "B", C` → `['a', 'B', 'c']`: identifiers as PostgreSQL stores them (an unquoted one
 * with its ASCII letters folded to lower case, as PostgreSQL folds them, a quoted one as
 * written, `""` unescaped), split on the commas and dots outside quotes (`sep`).
 */
export function identifiers(text: string, sep: ',' | '.' = ','): string[] {
  const out: string[] = []
  let current = ''
  let quoted = false
  const push = () => {
    const item = current.trim()
    out.push(
      /^".*"$/s.test(item)
        ? item.slice(1, -1).replace(/""/g, '"')
        : item.replace(/[A-Z]/g, (c) => c.toLowerCase()),
    )
    current = ''
  }
  for (const ch of text) {
    if (ch === '"') quoted = !quoted
    if (ch === sep && !quoted) push()
    else current += ch
  }
  push()
  return out
}

/** The definition says `NOT VALID` (anywhere: `CHECK (…) NOT VALID NO INHERIT`) or, on PostgreSQL 18, `NOT ENFORCED`. */
export const leftUnchecked = (definition: string) =>
  /\bNOT\s+(?:VALID|ENFORCED)\b/i.test(topLevel(scanSql(definition).masked))

/** The index just past the parenthesis that closes the one at `open`, in a masked text. */
function closing(masked: string, open: number): number {
  let depth = 0
  for (let k = open; k < masked.length; k++) {
    if (masked[k] === '(') depth++
    else if (masked[k] === ')' && --depth === 0) return k + 1
  }
  return -1
}

/** A masked text with everything inside parentheses blanked: the clauses of the definition itself, not of a condition or a column list. */
function topLevel(masked: string): string {
  let depth = 0
  let out = ''
  for (const ch of masked) {
    if (ch === ')') depth = Math.max(0, depth - 1)
    out += depth > 0 && ch !== '\n' ? ' ' : ch
    if (ch === '(') depth++
  }
  return out
}

const IDENTIFIER_TOKEN = '(?:"(?:[^"]|"")+"|[A-Za-z_\\u0080-\\uffff][\\w$\\u0080-\\uffff]*)'
const QUALIFIED_NAME = new RegExp(`^${IDENTIFIER_TOKEN}(?:\\s*\\.\\s*${IDENTIFIER_TOKEN})*`)

/**
 * Reads a chain constraint definition: `PRIMARY KEY (a, b)`, `UNIQUE [NULLS [NOT] DISTINCT]
 * (a)`, `CHECK (...)`, `FOREIGN KEY (a) REFERENCES t[(id)] [MATCH ...] [ON UPDATE ...] [ON
 * DELETE ...]`, `EXCLUDE ...`, each optionally `[NOT] DEFERRABLE [INITIALLY DEFERRED]`,
 * comments and literals read as PostgreSQL reads them ({@link scanSql}). What it cannot
 * read (`UNIQUE USING INDEX x`) is left out of the shape; its kind is always there. Null
 * when not even the kind can be told.
 */
export function constraintShape(definition: string): ConstraintShape | null {
  const { code, masked } = scanSql(definition)
  const lead = /^\s*(PRIMARY\s+KEY|UNIQUE|CHECK|EXCLUDE|FOREIGN\s+KEY)\b/i.exec(masked)
  if (!lead) return null
  const word = (lead[1] ?? '').split(/\s/)[0]?.toUpperCase() ?? ''
  // Clauses are searched for outside parentheses: `CHECK (NOT valid OR …)` says nothing
  // of NOT VALID.
  const clauses = topLevel(masked)
  const deferred = /\bINITIALLY\s+DEFERRED\b/i.test(clauses)
  const shape: ConstraintShape = {
    kind: KIND[word] ?? 'c',
    // INITIALLY DEFERRED alone makes a constraint deferrable too.
    deferrable: deferred || /(?<!\bNOT\s+)\bDEFERRABLE\b/i.test(clauses),
    deferred,
    enforced: !/\bNOT\s+ENFORCED\b/i.test(clauses),
  }
  /** The identifiers in the parentheses opening at `at` (masked), and where they end. */
  const list = (at: number) => {
    const end = closing(masked, at)
    return end === -1 ? null : { names: identifiers(code.slice(at + 1, end - 1)), end }
  }
  if (shape.kind === 'p' || shape.kind === 'u') {
    const head = /^\s*(?:PRIMARY\s+KEY|UNIQUE(?:\s+NULLS\s+(?:NOT\s+)?DISTINCT)?)\s*\(/i.exec(
      masked,
    )
    const columns = head && list(head[0].length - 1)
    if (columns) shape.columns = columns.names
  }
  if (shape.kind !== 'f') return shape
  const head = /^\s*FOREIGN\s+KEY\s*\(/i.exec(masked)
  const columns = head && list(head[0].length - 1)
  if (!columns) return shape
  const references = /^\s*REFERENCES\s*/i.exec(masked.slice(columns.end))
  if (!references) return shape
  let at = columns.end + references[0].length
  const name = QUALIFIED_NAME.exec(code.slice(at))?.[0]
  if (!name) return shape
  at += name.length
  const table = identifiers(name, '.').at(-1) ?? ''
  const open = /^\s*\(/.exec(masked.slice(at))
  const refColumns = open ? list(at + open[0].length - 1) : null
  if (refColumns) at = refColumns.end
  const rest = clauses.slice(at)
  const action = (on: string) => {
    const found = new RegExp(
      `\\bON\\s+${on}\\s+(NO\\s+ACTION|RESTRICT|CASCADE|SET\\s+NULL|SET\\s+DEFAULT)\\b`,
      'i',
    ).exec(rest)?.[1]
    return ACTION[(found ?? 'NO ACTION').replace(/\s+/g, ' ').toUpperCase()] ?? 'a'
  }
  const match = /\bMATCH\s+(FULL|PARTIAL|SIMPLE)\b/i.exec(rest)?.[1]?.toLowerCase() ?? 'simple'
  shape.columns = columns.names
  shape.references = {
    table,
    ...(refColumns && { columns: refColumns.names }),
    onDelete: action('DELETE'),
    onUpdate: action('UPDATE'),
    match: match[0] ?? 's',
  }
  return shape
}

/** Whether a found constraint differs from a {@link ConstraintShape}. */
function differs(shape: ConstraintShape, found: FoundConstraint): boolean {
  if (found.kind !== shape.kind) return true
  if (found.deferrable !== shape.deferrable || found.deferred !== shape.deferred) return true
  if (found.enforced !== shape.enforced) return true
  if (shape.columns && !sameColumns(found.columns ?? [], shape.columns)) return true
  const ref = shape.references
  return (
    ref !== undefined &&
    (found.refTable !== ref.table ||
      (ref.columns !== undefined && !sameColumns(found.refColumns ?? [], ref.columns)) ||
      found.onDelete !== ref.onDelete ||
      found.onUpdate !== ref.onUpdate ||
      found.match !== ref.match)
  )
}

interface FoundConstraint {
  definition: string
  kind: string
  validated: boolean
  enforced: boolean
  deferrable: boolean
  deferred: boolean
  columns: string[] | null
  refTable: string | null
  refColumns: string[] | null
  onDelete: string
  onUpdate: string
  match: string
}

const CAST =
  /::(?:"[^"]+"|[a-z_][a-z0-9_]*(?:\s+(?:varying|precision|with(?:out)?\s+time\s+zone))?)(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?/g
/**
 * A predicate as far as spelling goes: outside quoted literals, no case, spaces,
 * parentheses, double quotes or casts (PostgreSQL prints `(jersey_number IS NOT NULL)`
 * for `jersey_number IS NOT NULL`, and adds casts). A heuristic both ways: two that differ
 * may mean the same (`IN (…)` prints as `= ANY (ARRAY[…])`; the index is then rebuilt:
 * safe, not free), and two that compare equal may not (`NOT (a AND b)` against `NOT a
 * AND b`, `x::int > 1` against `x > 1`, `"A"` against `a`). The drift report compares
 * the printed definitions exactly.
 */
const loosePredicate = (text: string | null) => {
  if (text === null) return null
  const { code, literals } = scanSql(text)
  const loose = (part: string) =>
    part
      .toLowerCase()
      .replace(CAST, '')
      .replace(/[\s()"]+/g, '')
  let out = ''
  let at = 0
  for (const [from, to] of literals) {
    out += loose(code.slice(at, from)) + code.slice(from, to)
    at = to
  }
  return out + loose(code.slice(at))
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
    const found = await query<FoundConstraint>(
      `SELECT pg_get_constraintdef(k.oid) AS definition, k.contype AS kind,
              k.convalidated AS validated, k.condeferrable AS deferrable, k.condeferred AS deferred,
              COALESCE((to_jsonb(k) ->> 'conenforced')::boolean, true) AS enforced,
              ${ATTRIBUTE_NAMES('k.conrelid', 'k.conkey')} AS columns,
              r.relname AS "refTable",
              ${ATTRIBUTE_NAMES('k.confrelid', 'k.confkey')} AS "refColumns",
              k.confdeltype AS "onDelete", k.confupdtype AS "onUpdate", k.confmatchtype AS match
         FROM pg_constraint k LEFT JOIN pg_class r ON r.oid = k.confrelid
        WHERE k.conrelid = to_regclass(quote_ident($1)) AND k.conname = $2`,
      [table, name],
    )
    const existing = found.rows[0]
    if (existing) return note(await checkConstraint(table, name, definition, existing))
    const keyed = KEY_CONSTRAINT.exec(definition.trim())
    if (keyed) {
      // A key's index takes the constraint's name: what a hand fix may have left in its place.
      const kind = keyed[1]?.toUpperCase() === 'PRIMARY KEY' ? 'p' : 'u'
      const columns = identifiers(keyed[2] ?? '')
      const repaired = await adoptKey(table, name, kind, columns)
      if (repaired) return note(repaired)
    }
    await query(`ALTER TABLE ${ident(table)} ADD CONSTRAINT ${ident(name)} ${definition}`)
    return note({ object: name, action: 'created' })
  }

  /**
   * A constraint of the chain's name is the chain's only if it is the same kind of
   * constraint on the same columns, as deferrable (a foreign key also: to the same table
   * and columns, with the same ON DELETE, ON UPDATE and MATCH). Anything else,
   * `PRIMARY KEY (player_id)` for the chain's `(player_id, team_id)`, stops the run here with
   * both definitions, rather than being counted as `exists` and failing some later
   * migration that relies on it. Not compared (that needs PostgreSQL's parser; the drift
   * report compares the printed definitions): a CHECK's or EXCLUDE's condition, NULLS NOT
   * DISTINCT, NO INHERIT, a referenced table's schema. One added `NOT VALID` by hand (the
   * usual way on a big table) is validated, unless the chain's own definition says `NOT
   * VALID` (or `NOT ENFORCED`): rows that break it stop the run here, PostgreSQL naming it.
   */
  const checkConstraint = async (
    table: string,
    name: string,
    definition: string,
    existing: FoundConstraint,
  ): Promise<Change> => {
    const shape = constraintShape(definition)
    if (shape && differs(shape, existing)) {
      throw new Error(
        `${name} on ${table} is "${existing.definition}", not the chain's "${definition.trim()}": drop or change it by hand`,
      )
    }
    if (existing.validated || !existing.enforced || leftUnchecked(definition)) {
      return { object: name, action: 'exists' }
    }
    await query(`ALTER TABLE ${ident(table)} VALIDATE CONSTRAINT ${ident(name)}`)
    return { object: name, action: 'repaired', detail: { validated: true } }
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
                pg_get_expr(i.indpred, i.indrelid) AS predicate,
                (SELECT amname FROM pg_am WHERE oid = c.relam) AS method
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
      const columns = listed === undefined ? undefined : identifiers(listed)
      // A partial index on other rows (`WHERE role = 'captain'` for the chain's `WHERE
      // jersey_number IS NOT NULL`) keeps nothing unique where the chain's does.
      const scanned = scanSql(index.definition)
      const where = /\bWHERE\b/i.exec(scanned.masked)
      const predicate = where ? scanned.code.slice(where.index + where[0].length) : null
      // `USING gist (…)`; btree when the definition names none.
      const method = (/^\s*USING\s+(\w+)/i.exec(scanned.masked)?.[1] ?? 'btree').toLowerCase()
      const fits =
        existing?.valid &&
        existing.method === method &&
        existing.unique === (index.unique === true) &&
        (columns === undefined ||
          !columns.every((c) => /^[a-z_][a-z0-9_]*$/.test(c)) ||
          sameColumns(existing.columns ?? [], columns)) &&
        loosePredicate(existing.predicate) === loosePredicate(predicate)
      if (existing && fits) return note({ object: name, action: 'exists' })
      const unique = index.unique ? 'UNIQUE ' : ''
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
