import type { QueryResult, QueryResultRow } from 'pg'

/** What a migration found or did to one object: the unit of the ledger's `changes`. */
export interface Change {
  /** `table`, `table.column`, an index or constraint name. */
  object: string
  /** `created` and `exists` for schema objects; `inserted`, `updated`, `cleared`, `unchanged` for rows. */
  action:
    | 'created'
    | 'exists'
    | 'repaired'
    | 'inserted'
    | 'updated'
    | 'deleted'
    | 'cleared'
    | 'unchanged'
  rows?: number
  detail?: unknown
}

/**
 * `ran`: it changed something; `already-present`: it found everything in place;
 * `baseline`: it found everything in place and the legacy Alembic stamp vouches for it.
 */
export type Outcome = 'ran' | 'already-present' | 'baseline'

export type Query = <R extends QueryResultRow = QueryResultRow>(
  text: string,
  values?: unknown[],
) => Promise<QueryResult<R>>

/** Table definition for {@link SchemaHelpers.ensureTable}: columns and named constraints, in order. */
export interface TableDefinition {
  columns: Record<string, string>
  /** Constraint name → definition (`PRIMARY KEY (id)`, `CHECK (...)`, `FOREIGN KEY ...`). */
  constraints?: Record<string, string>
}

export interface IndexDefinition {
  table: string
  /** The part after `ON table`: `(team_id, starts_at)` or `(team_id, jersey_number) WHERE …`. */
  definition: string
  unique?: boolean
  /** Build with CREATE INDEX CONCURRENTLY; needs a migration with `transaction = false`. */
  concurrently?: boolean
}

/**
 * Idempotent schema helpers: each checks the catalog, creates what is missing,
 * and records a {@link Change} saying whether it created or found the object.
 */
export interface SchemaHelpers {
  ensureTable(name: string, table: TableDefinition): Promise<Change[]>
  ensureColumn(table: string, column: string, definition: string): Promise<Change>
  ensureConstraint(table: string, name: string, definition: string): Promise<Change>
  ensureIndex(name: string, index: IndexDefinition): Promise<Change>
  /** Records a change a migration made with plain SQL (a data backfill, say). */
  record(change: Change): void
}

/** What a migration's `up` and `down` receive as `context` (CONTRACT.md, "Migration modules"). */
export interface MigrationContext extends SchemaHelpers {
  /** Runs one statement in the migration's own transaction, under `lock_timeout`. */
  query: Query
}

export interface MigrationParams {
  name: string
  context: MigrationContext
}

/** The shape of a migration module. */
export interface MigrationModule {
  up(params: MigrationParams): Promise<unknown>
  down?(params: MigrationParams): Promise<unknown>
  /** `false` runs the migration outside a transaction (for CREATE INDEX CONCURRENTLY). */
  transaction?: boolean
}

/** A migration as the engine knows it: identity, and its module on demand. */
export interface LoadedMigration {
  name: string
  path: string
  checksum: string
  /**
   * Why the chain cannot run this migration whatever the ledger says (two files with its
   * name): a run fails on it, naming it, while the chain can still be listed and shown.
   */
  problem?: string
  /** Imports the module (once); rejects when it exports no `up()`, or has a `problem`. */
  load(): Promise<MigrationModule>
}

export interface LedgerRow {
  name: string
  checksum: string
  outcome: Outcome
  appliedAt: Date
  durationMs: number
  changes: Change[]
  appliedBy: string | null
}

export type RunState = 'idle' | 'waiting-for-lock' | 'running' | 'complete' | 'failed'

export interface RunError {
  migration: string | null
  message: string
  code: string | null
  /** PostgreSQL's DETAIL: which row broke a constraint (`Key (team_id, jersey_number)=(2, 23) is duplicated.`). */
  detail: string | null
}

/** A session that blocks the migration (from `pg_blocking_pids`). */
export interface BlockingSession {
  pid: number
  application: string
  state: string | null
  transactionSeconds: number | null
}

/** The holder of the migration lock, as a waiting replica sees it. */
export interface LockHolder {
  pid: number
  application: string
  clientAddr: string | null
  /** Age of the holder's database session (advisory locks carry no acquisition time). */
  sessionSeconds: number | null
}
