import type { ClientBase } from 'pg'
import type { UmzugStorage } from 'umzug'
import { errorCode } from './errors.js'
import type { Change, LedgerRow, Outcome } from './types.js'

export const LEDGER_TABLE = 'schema_migrations'

/** The ledger's DDL (the benchmark's psql baseline runs it too). */
export const CREATE_LEDGER = `CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (
  name text PRIMARY KEY,
  checksum text NOT NULL,
  outcome text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL,
  changes jsonb NOT NULL DEFAULT '[]',
  applied_by text
)`

interface LedgerRecord {
  name: string
  checksum: string
  outcome: Outcome
  applied_at: Date
  duration_ms: number
  changes: Change[]
  applied_by: string | null
}

const toRow = (r: LedgerRecord): LedgerRow => ({
  name: r.name,
  checksum: r.checksum,
  outcome: r.outcome,
  appliedAt: r.applied_at,
  durationMs: r.duration_ms,
  changes: r.changes,
  appliedBy: r.applied_by,
})

/** Creates the ledger table if it is missing; run under the migration lock. */
export async function ensureLedger(client: ClientBase): Promise<void> {
  await client.query(CREATE_LEDGER)
}

/**
 * Every ledger row in the chain's name order (`COLLATE "C"`, byte order, as
 * `compareNames` orders the chain, not the database's locale); an absent ledger
 * reads as empty.
 */
export async function readLedger(client: Pick<ClientBase, 'query'>): Promise<LedgerRow[]> {
  try {
    const { rows } = await client.query<LedgerRecord>(
      `SELECT name, checksum, outcome, applied_at, duration_ms, changes, applied_by
         FROM ${LEDGER_TABLE} ORDER BY name COLLATE "C"`,
    )
    return rows.map(toRow)
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === '42P01') return []
    if (code === '42703') {
      // golang-migrate, Rails, dbmate... keep a table of this name too. One further along
      // the search_path belongs to another application: this chain's ledger is not there
      // yet (the run creates it in the current schema). One in the current schema is in
      // the way.
      const { rows } = await client
        .query<{ here: boolean }>(
          `SELECT c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AS here
           FROM pg_class c WHERE c.oid = to_regclass('${LEDGER_TABLE}')`,
        )
        .catch(() => ({ rows: [] as Array<{ here: boolean }> }))
      if (rows[0]?.here === false) return []
      throw new Error(
        `${LEDGER_TABLE} exists but is not this service's ledger (${(err as Error).message}): another migration tool's table? Rename it; this service then creates its own`,
        { cause: err },
      )
    }
    throw err
  }
}

/** The Python service's Alembic stamp, left where it is and never written. */
export const LEGACY_STAMP_TABLE = 'alembic_version'

/**
 * SQL: the oid of the legacy stamp on the search_path when it sits in the schema of the
 * club's `players`, else null. Another application's `alembic_version` is not this chain's.
 */
export const LEGACY_STAMP_OID = `(SELECT v.oid FROM pg_class v
   WHERE v.oid = to_regclass('${LEGACY_STAMP_TABLE}')
     AND v.relnamespace = (SELECT p.relnamespace FROM pg_class p WHERE p.oid = to_regclass('players')))`

/**
 * The migration number the legacy stamp vouches for (`018` on the incident database),
 * or null: no `alembic_version` beside the club's `players` (another application's
 * elsewhere on the search_path is none of this chain's business), no row, no numeric
 * revision, or a table of another shape. Several rows (Alembic's branches) vouch for the
 * highest. Read under `lock_timeout`: the migration lock is held, and a session holding
 * the table (an open `TRUNCATE`) must not stall the run unseen. A migration numbered at or
 * below the stamp is recorded `baseline` when it finds everything in place: still
 * checked, never trusted.
 */
export async function readLegacyStamp(
  client: Pick<ClientBase, 'query'>,
  lockTimeoutMs: number,
): Promise<number | null> {
  const { rows } = await client.query<{ present: boolean }>(
    `SELECT ${LEGACY_STAMP_OID} IS NOT NULL AS present`,
  )
  if (!rows[0]?.present) return null
  await client.query(`BEGIN; SET LOCAL lock_timeout = ${Math.trunc(lockTimeoutMs)}`)
  try {
    const stamp = await client.query<{ version: number | null }>(
      `SELECT max(substring(version_num::text FROM '^([0-9]{1,9})(?:_|$)')::int) AS version
         FROM ${LEGACY_STAMP_TABLE}`,
    )
    await client.query('COMMIT')
    return stamp.rows[0]?.version ?? null
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    // Class 42: no `version_num`, not readable by this role, not text: vouches for nothing.
    // Anything else (a lock timeout, a lost connection) fails the run, which is retried.
    if (errorCode(err)?.startsWith('42')) return null
    throw err
  }
}

/** The number a migration's name starts with (`18` for `018_registration_waiver`), or null. */
export function migrationNumber(name: string): number | null {
  const match = /^(\d{1,9})_/.exec(name)
  return match ? Number(match[1]) : null
}

/** Writes a ledger row on `client`, inside the migration's own transaction. */
export async function insertLedgerRow(
  client: Pick<ClientBase, 'query'>,
  row: Omit<LedgerRow, 'appliedAt'>,
): Promise<Date> {
  const { rows } = await client.query<{ applied_at: Date }>(
    `INSERT INTO ${LEDGER_TABLE} (name, checksum, outcome, duration_ms, changes, applied_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING applied_at`,
    [
      row.name,
      row.checksum,
      row.outcome,
      row.durationMs,
      JSON.stringify(row.changes),
      row.appliedBy,
    ],
  )
  return rows[0]?.applied_at ?? new Date()
}

/** The same insert as text, for sending together with COMMIT in one round trip. */
export function ledgerInsertSql(
  row: Omit<LedgerRow, 'appliedAt'>,
  literal: (value: string) => string,
): string {
  const values = [
    literal(row.name),
    literal(row.checksum),
    literal(row.outcome),
    String(Math.trunc(row.durationMs)),
    `${literal(JSON.stringify(row.changes))}::jsonb`,
    row.appliedBy === null ? 'NULL' : literal(row.appliedBy),
  ]
  return `INSERT INTO ${LEDGER_TABLE} (name, checksum, outcome, duration_ms, changes, applied_by)
     VALUES (${values.join(', ')})`
}

export async function deleteLedgerRow(client: Pick<ClientBase, 'query'>, name: string) {
  await client.query(`DELETE FROM ${LEDGER_TABLE} WHERE name = $1`, [name])
}

/**
 * umzug's storage contract on the ledger, for one run under the lock. `executed`
 * reads the ledger once (nothing else writes it while the lock is held); logging
 * is a no-op because the engine writes each row inside the migration's
 * transaction (umzug alone would run `up()` and then log it: two commits, the
 * window the incident fell into).
 */
export function ledgerStorage(client: Pick<ClientBase, 'query'>): UmzugStorage {
  let names: Promise<string[]> | undefined
  return {
    executed() {
      names ??= readLedger(client).then((rows) => rows.map((r) => r.name))
      return names
    },
    async logMigration() {},
    async unlogMigration() {},
  }
}

/**
 * SQL: puts the club's schema first on the search_path when the current schema is the
 * role's own. PostgreSQL 15's advice for securing `public`, a schema named after the
 * role, puts `"$user"` ahead of `public`: objects would then be created in that schema
 * while the club's tables are in `public`, every existence check would look in the wrong
 * place, the chain would build a second, empty copy of the tables (and of the ledger),
 * and every unqualified query would read it. The club's schema is, of the schemas on the
 * search_path, the first holding this service's ledger (a `checksum` column) with a row
 * in it, else the first holding the legacy stamp beside `players`, else the first holding
 * `players` and `teams`: by the strength of that evidence, not by the path's order alone,
 * so that a copy of `players` (or of both tables) kept in the role's schema is not taken
 * for the club, nor an empty ledger a failed first run left there. A ledger the role may
 * not read, or one locked by someone (an `ALTER`: waited for 200 ms at most), counts as
 * one with rows. Any other current schema: nothing is read and nothing moves (a new
 * database, another application's `schema_migrations` or `alembic_version` on the path).
 * Run by every session of the service: the migrations' and the requests'.
 */
export const CLUB_SCHEMA_FIRST = `DO $club$
DECLARE
  r record;
  found_rows boolean;
  candidate int;
  best_rank int;
  best name;
BEGIN
  IF current_schema() IS DISTINCT FROM current_user THEN
    RETURN;
  END IF;
  FOR r IN
    SELECT n.nspname,
           (SELECT c.oid FROM pg_class c
             WHERE c.relnamespace = n.oid AND c.relname = '${LEDGER_TABLE}' AND c.relkind IN ('r', 'p')
               AND EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'checksum' AND NOT a.attisdropped)) AS ledger,
           EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = '${LEGACY_STAMP_TABLE}') AS stamp,
           EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'players') AS players,
           EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'teams') AS teams
      FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(name, pos)
      JOIN pg_namespace n ON n.nspname = s.name
     ORDER BY s.pos
  LOOP
    candidate := NULL;
    IF r.ledger IS NOT NULL THEN
      IF NOT has_table_privilege(r.ledger, 'SELECT') THEN
        candidate := 1;
      ELSE
        BEGIN
          PERFORM set_config('lock_timeout', '200ms', true);
          EXECUTE format('SELECT EXISTS (SELECT FROM %s)', r.ledger::regclass) INTO found_rows;
          IF found_rows THEN
            candidate := 1;
          END IF;
        EXCEPTION WHEN lock_not_available THEN
          candidate := 1;
        WHEN undefined_table THEN
          NULL;
        END;
      END IF;
    END IF;
    IF candidate IS NULL AND r.stamp AND r.players THEN
      candidate := 2;
    END IF;
    IF candidate IS NULL AND r.players AND r.teams THEN
      candidate := 3;
    END IF;
    IF candidate IS NOT NULL AND (best_rank IS NULL OR candidate < best_rank) THEN
      best_rank := candidate;
      best := r.nspname;
    END IF;
  END LOOP;
  IF best IS NOT NULL AND best IS DISTINCT FROM current_schema() THEN
    PERFORM set_config('search_path', quote_ident(best) || ', ' || current_setting('search_path'), false);
  END IF;
END
$club$`
