import { hostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { endClient, succeedsWithin } from '../lib/end-client.js'
import { diffSnapshots, schemaSnapshot } from './catalog.js'
import {
  errorCode,
  isConnectionError,
  LOCK_NOT_AVAILABLE,
  MigrationLoadError,
  QUERY_CANCELED,
  RevertRefusedError,
  rootCause,
  StopRequestedError,
  toRunError,
} from './errors.js'
import {
  CLUB_SCHEMA_FIRST,
  deleteLedgerRow,
  ensureLedger,
  insertLedgerRow,
  ledgerInsertSql,
  ledgerStorage,
  migrationNumber,
  readLedger,
  readLegacyStamp,
} from './ledger.js'
import { builtInMigrationsDir, compareNames, loadMigrations, loadSchemaSnapshot } from './loader.js'
import { acquireMigrationLock, releaseMigrationLock, sleep } from './lock.js'
import { createSchemaHelpers } from './schema-helpers.js'
import type {
  BlockingSession,
  Change,
  LedgerRow,
  LoadedMigration,
  LockHolder,
  MigrationContext,
  Outcome,
  Query,
  RunError,
  RunState,
} from './types.js'

/** The subset of a pino logger the engine uses. */
export interface MigratorLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
}

export interface MigratorOptions {
  connectionString: string
  /** A folder of migration modules; the built-in chain when absent. */
  migrationsDir?: string | undefined
  /** `lock_timeout` for every migration statement. */
  lockTimeoutMs?: number
  /**
   * `statement_timeout` of the engine's sessions; 0 (the default) is none, whatever the
   * role or database sets for the application: a backfill that outlasts it would be
   * cancelled on every retry, and lock waits are bounded by `lockTimeoutMs` anyway.
   */
  statementTimeoutMs?: number
  /** Attempts of one migration that hit `lock_timeout` before the run fails (the caller retries runs). */
  maxLockAttempts?: number
  /** How long `stop()` lets a running migration finish before cancelling it. */
  stopGraceMs?: number
  logger?: MigratorLogger
  applicationName?: string
}

/** How the live schema compares with what the chain produces. */
export interface DriftReport {
  status: 'none' | 'drift' | 'unknown'
  differences: string[]
}

/** The ledger, merged with the chain, and drift: everything `/migrations` shows that lives in the database. */
export interface Inspection {
  migrations: MigrationView[]
  applied: number
  pending: number
  unknown: number
  checksumMismatches: number
  drift: DriftReport
  inspectedAt: string
  /** The run as it was just before the ledger was read: the statuses above agree with it. */
  run: RunView
}

/** One migration as `/migrations` shows it. */
export interface MigrationView {
  name: string
  status: 'applied' | 'pending' | 'running' | 'failed' | 'unknown'
  outcome: Outcome | null
  appliedAt: string | null
  durationMs: number | null
  checksum: string | null
  checksumMatches: boolean | null
  changes: Change[]
}

export interface RunView {
  state: RunState
  current: string | null
  lastError: RunError | null
  lockHolder: LockHolder | null
  blockedBy: BlockingSession[]
  /**
   * After a failure with a connection-class error during a migration: whether the run's
   * own session had gone (terminated, cut off) rather than answering the migration's
   * statement with that error (an `ALTER DATABASE` naming no database: 3D000).
   */
  sessionLost?: boolean
}

const silent: MigratorLogger = { info() {}, warn() {}, error() {}, debug() {} }

/**
 * The migration engine: umzug over a PostgreSQL ledger, one advisory lock per
 * run, each migration and its ledger row in one transaction. Knows nothing of HTTP.
 */
export class Migrator {
  readonly dir: string
  private readonly opts: Required<Omit<MigratorOptions, 'migrationsDir'>>
  private loaded: Promise<LoadedMigration[]> | undefined
  private run: RunView = {
    state: 'idle',
    current: null,
    lastError: null,
    lockHolder: null,
    blockedBy: [],
  }
  private stopping = false
  private readonly abort = new AbortController()
  /** The run in progress: its migration session's pid (to cancel it) and when it ends. */
  private active: { pid: number; done: Promise<unknown> } | undefined
  /** Each session's backend pid, read when it opened (`connect`). */
  private readonly backendPids = new WeakMap<pg.Client, number>()
  /** A `down` is in progress (for the stop message: a cancelled revert leaves it applied). */
  private reverting = false
  /** The ledger's `applied_by`, host:pid: built once per migrator, not once per migration. */
  private readonly appliedBy = `${hostname()}:${process.pid}`
  /** What the legacy Alembic stamp vouches for in this run (`readLegacyStamp`). */
  private legacyStamp: number | null = null

  constructor(options: MigratorOptions) {
    this.dir = options.migrationsDir ?? builtInMigrationsDir()
    this.opts = {
      connectionString: options.connectionString,
      lockTimeoutMs: options.lockTimeoutMs ?? 3000,
      statementTimeoutMs: options.statementTimeoutMs ?? 0,
      maxLockAttempts: options.maxLockAttempts ?? 20,
      stopGraceMs: options.stopGraceMs ?? 10_000,
      logger: options.logger ?? silent,
      applicationName: options.applicationName ?? 'basketball-api',
    }
  }

  /** The chain, loaded once. */
  migrations(): Promise<LoadedMigration[]> {
    this.loaded ??= loadMigrations(this.dir)
    this.loaded.catch(() => {
      this.loaded = undefined
    })
    return this.loaded
  }

  /** The run as it stands: state, current migration, last error, who we wait for. */
  view(): RunView {
    return { ...this.run, blockedBy: [...this.run.blockedBy] }
  }

  /** Reads the ledger on a short-lived connection. */
  async ledger(): Promise<LedgerRow[]> {
    return this.withClient('ledger', (client) => readLedger(client))
  }

  /**
   * Names of the chain's migrations that the ledger does not list. Rejects while a
   * migration has a `problem`: a replica that does not migrate must not call that ready.
   */
  async pending(rows?: LedgerRow[]): Promise<string[]> {
    const [migrations, ledger] = await Promise.all([this.migrations(), rows ?? this.ledger()])
    // Applied or not: the files are not what was built and reviewed.
    const broken = migrations.find((m) => m.problem)
    if (broken?.problem) throw new MigrationLoadError(broken.name, broken.problem)
    const done = new Set(ledger.map((r) => r.name))
    return migrations.filter((m) => !done.has(m.name)).map((m) => m.name)
  }

  /** Merges the chain, the ledger and the run into the per-migration list of `/migrations`. */
  async describe(rows: LedgerRow[], run: RunView): Promise<MigrationView[]> {
    const migrations = await this.migrations()
    const byName = new Map(rows.map((r) => [r.name, r]))
    const known = new Set(migrations.map((m) => m.name))
    const views: MigrationView[] = migrations.map((m) => {
      const row = byName.get(m.name)
      if (row) return appliedView(row, m.checksum)
      let status: MigrationView['status'] = 'pending'
      if (run.state === 'running' && run.current === m.name) status = 'running'
      else if (run.state === 'failed' && run.lastError?.migration === m.name) status = 'failed'
      return { ...appliedView(undefined, null), name: m.name, status }
    })
    for (const row of rows) {
      if (!known.has(row.name)) views.push({ ...appliedView(row, null), status: 'unknown' })
    }
    return views.sort((a, b) => compareNames(a.name, b.name))
  }

  /**
   * Reads the ledger and the catalog once: per-migration status, unknown rows
   * (from a newer release), checksum mismatches, and drift against the chain's
   * committed schema snapshot (`unknown` while migrations are pending or when
   * the chain has no snapshot).
   */
  async inspect(): Promise<Inspection> {
    const expected = await loadSchemaSnapshot(this.dir)
    return this.withClient('inspect', async (client) => {
      // The run first, then the ledger: a migration that commits in between shows as
      // applied rather than as both done and not started.
      const run = this.view()
      const migrations = await this.describe(await readLedger(client), run)
      const count = (s: MigrationView['status']) => migrations.filter((m) => m.status === s).length
      const pending = migrations.length - count('applied') - count('unknown')
      let drift: DriftReport = { status: 'unknown', differences: [] }
      // Not while migrations are pending, nor while the ledger lists a newer release's:
      // that release's schema is not this build's to call drift (an old replica during a
      // rollout, or after a rollback, would say "someone changed the schema by hand").
      if (expected && pending === 0 && count('unknown') === 0) {
        const differences = diffSnapshots(expected, await schemaSnapshot(client))
        drift = { status: differences.length > 0 ? 'drift' : 'none', differences }
      }
      return {
        migrations,
        applied: count('applied'),
        pending,
        unknown: count('unknown'),
        checksumMismatches: migrations.filter((m) => m.checksumMatches === false).length,
        drift,
        inspectedAt: new Date().toISOString(),
        run,
      }
    })
  }

  /**
   * One run: wait for the lock, apply every pending migration in name order,
   * release. Resolves with the names applied; rejects with the first failure.
   * `to` stops after that migration (tests, and the CLI's partial runs).
   */
  async up(options: { to?: string } = {}): Promise<string[]> {
    this.reverting = false
    // The ledger is read without the lock on what becomes the run's work session: an
    // up-to-date boot (most of them) ends here, and a run saves a connection.
    const { pending: likelyPending, work } = await this.pendingWithoutLock()
    if (likelyPending?.length === 0) {
      await endClient(work)
      return []
    }
    // Start importing what will probably run now: the imports overlap the watch session's
    // connection, the lock and the ledger read instead of following them. A few modules at
    // a time, and no further once the lock turns out to be held by another replica: a
    // waiting replica will probably apply nothing, and on a busy node its imports would
    // only slow down the one that is migrating. umzug comes last, once the modules are in
    // and the lock is not seen held. The run awaits the same memoised imports.
    let umzugModule: Promise<typeof import('./umzug.js')> | undefined
    const loadUmzug = () => {
      umzugModule ??= import('./umzug.js')
      return umzugModule
    }
    if (likelyPending) void this.prefetch(likelyPending, loadUmzug)
    return this.locked(
      async (work, watch) => {
        await ensureLedger(work)
        const migrations = await this.migrations()
        // Nothing pending after all (another replica applied it while this one waited for
        // the lock): apply nothing and do not wait for umzug.
        const storage = ledgerStorage(work)
        const done = new Set(await storage.executed({ context: {} }))
        const pending = migrations.filter((m) => !done.has(m.name))
        if (pending.length === 0) return []
        // `to` already applied (by an earlier run, or the replica this one waited for): the
        // target is reached, whatever comes after it. umzug would call that an error.
        if (options.to !== undefined && done.has(options.to)) return []
        // From here this replica runs migrations: umzug loads beside the stamp and the modules.
        void loadUmzug().catch(() => {})
        // A stamp vouches only for a number the chain has (18: 018_registration_waiver);
        // any other number belongs to some other numbering.
        const stamp = await readLegacyStamp(work, this.opts.lockTimeoutMs)
        this.legacyStamp = migrations.some((m) => migrationNumber(m.name) === stamp) ? stamp : null
        // Every module that will run is imported before the first transaction opens: a
        // broken one fails the run before anything of it is applied.
        await Promise.all(pending.map((m) => m.load()))
        const { Umzug } = await loadUmzug()
        const umzug = new Umzug({
          migrations: migrations.map((m) => ({
            name: m.name,
            path: m.path,
            up: () => this.apply(work, watch, m),
          })),
          storage,
          context: {},
          logger: undefined,
        })
        umzug.on('migrating', ({ name }) => {
          this.run.current = name
        })
        const applied = await umzug.up(options.to ? { to: options.to } : {})
        return applied.map((m) => m.name)
      },
      { work, ...(options.to === undefined && { ifNothingPending: () => [] }) },
    )
  }

  private async prefetch(names: string[], loadUmzug: () => Promise<unknown>): Promise<void> {
    const waiting = () => this.run.state === 'waiting-for-lock'
    const wanted = new Set(names)
    const migrations = (await this.migrations().catch(() => [])).filter((m) => wanted.has(m.name))
    // In batches, with a turn of the event loop between them: a compiled module loads
    // synchronously (loader.ts), and the sessions' connection and lock replies must not
    // wait for 200 of them in one go. The lock is checked between batches.
    for (let i = 0; i < migrations.length; i += 16) {
      if (waiting()) return
      await Promise.all(migrations.slice(i, i + 16).map((m) => m.load().catch(() => {})))
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    if (!waiting()) await loadUmzug().catch(() => {})
  }

  /**
   * Every boot but a deploy's first finds the whole chain in the ledger: one
   * connection and one read, no lock. A row is only there once its migration
   * committed, so "nothing pending" read without the lock is as true as with it. The
   * session it opens is returned to become the run's work session (the caller closes it).
   * `pending` is null when the ledger could not be read for another reason than an outage
   * or a migration with a problem (the locked run reports it with its context).
   */
  private async pendingWithoutLock(): Promise<{ pending: string[] | null; work: pg.Client }> {
    let work: pg.Client | undefined
    try {
      void this.migrations() // the directory is read while the connection opens
      work = await this.connect('migration')
      const pending = await this.pending(await readLedger(work))
      if (pending.length === 0) this.markComplete()
      return { pending, work }
    } catch (err) {
      // Unreachable: report it now rather than wait out a second connection attempt. Two
      // files of one migration name: no run starts, whatever the ledger says.
      if (!work || isConnectionError(err) || err instanceof MigrationLoadError) {
        if (work) await endClient(work)
        this.run = {
          ...this.run,
          state: 'failed',
          current: null,
          blockedBy: [],
          lastError: toRunError(err, null),
        }
        throw err
      }
      return { pending: null, work }
    }
  }

  private markComplete() {
    this.run = {
      ...this.run,
      state: 'complete',
      current: null,
      lastError: null,
      lockHolder: null,
      blockedBy: [],
    }
  }

  /**
   * Reverts the last applied migration that has a `down`, with its ledger row: in one
   * transaction, or, for a migration with `transaction = false`, as its `up` ran (each
   * statement on its own, the ledger row removed last). Creates nothing: with no ledger
   * there is nothing to revert. Refuses, under the lock, while the ledger lists a
   * migration this build does not know: a newer release's would lose its floor, and one
   * may have been applied while this run waited for the lock.
   */
  async down(): Promise<string | null> {
    this.reverting = false
    return this.locked(async (work) => {
      const migrations = await this.migrations()
      const rows = await readLedger(work)
      const known = new Set(migrations.map((m) => m.name))
      const unknown = rows.filter((r) => !known.has(r.name)).map((r) => r.name)
      if (unknown.length > 0) throw new RevertRefusedError(unknown)
      const applied = new Set(rows.map((r) => r.name))
      const last = migrations.filter((m) => applied.has(m.name)).at(-1)
      if (!last) return null
      const module = await last.load()
      if (typeof module.down !== 'function') {
        throw new Error(`migration ${last.name} has no down(); it cannot be reverted`)
      }
      this.run.current = last.name
      this.reverting = true
      const changes: Change[] = []
      const context = this.context(work, changes)
      if (module.transaction === false) {
        await work.query(`SET lock_timeout = ${this.opts.lockTimeoutMs}`)
        try {
          await module.down({ name: last.name, context })
          await deleteLedgerRow(work, last.name)
        } finally {
          await work.query('RESET lock_timeout').catch(() => {})
        }
      } else {
        await work.query(`BEGIN; SET LOCAL lock_timeout = ${this.opts.lockTimeoutMs}`)
        try {
          await module.down({ name: last.name, context })
          await deleteLedgerRow(work, last.name)
          await work.query('COMMIT')
        } catch (err) {
          await work.query('ROLLBACK').catch(() => {})
          throw err
        }
      }
      this.opts.logger.info({ migration: last.name, changes }, 'migration reverted')
      return last.name
    })
  }

  /**
   * Asks a run to stop: no further migration starts and a lock wait ends. A
   * migration in progress may finish within `stopGraceMs`; after that it is
   * cancelled, so it rolls back. Resolves when the run has let go of the lock.
   */
  async stop(): Promise<void> {
    this.stopping = true
    this.abort.abort()
    const active = this.active
    if (!active) return
    const grace = new AbortController()
    const finished = await Promise.race([
      active.done.then(
        () => true,
        () => true,
      ),
      sleep(this.opts.stopGraceMs, grace.signal).then(() => false),
    ])
    grace.abort() // clears the grace timer, which would otherwise keep the process alive
    if (finished) return
    this.opts.logger.warn({ pid: active.pid }, 'cancelling the running migration to shut down')
    await this.withClient('cancel', (c) => c.query('SELECT pg_cancel_backend($1)', [active.pid]))
    await active.done.catch(() => {})
  }

  /** What a migration gets: `query` (the work session's own, unless the caller wraps it) and the helpers. */
  private context(
    work: pg.Client,
    changes: Change[],
    query: Query = (text, values) => work.query(text, values),
  ): MigrationContext {
    return { query, ...createSchemaHelpers(query, changes) }
  }

  /**
   * Runs `fn` with a work connection that holds the migration lock: opens the work
   * session (unless `work` is given; it is closed at the end either way) and a watch
   * session beside it, takes the lock on the work session, runs `fn`, releases. With
   * `ifNothingPending`, a wait for the lock ends as soon as a notified release leaves
   * nothing pending in the ledger, and that value is returned without running `fn`.
   *
   * The lock lives on the session that applies the migrations, not on one of its own: a
   * lock session that died (a `pg_terminate_backend`, a lost connection) freed the lock
   * while this run's migration went on, and another replica then applied the same one
   * beside it. Now whatever ends the lock ends the session's transaction with it, so no
   * statement of this run can follow the lock's loss. The watch session only watches who
   * blocks a running migration (`pg_blocking_pids`).
   */
  private async locked<T>(
    fn: (work: pg.Client, watch: pg.Client) => Promise<T>,
    options: { work?: pg.Client; ifNothingPending?: () => T } = {},
  ): Promise<T> {
    const { ifNothingPending } = options
    if (this.stopping) {
      if (options.work) await endClient(options.work)
      throw new StopRequestedError('the migrator is stopping')
    }
    let resolveDone: () => void = () => {}
    const done = new Promise<void>((r) => {
      resolveDone = r
    })
    const opened: pg.Client[] = options.work ? [options.work] : []
    // The watch session opens while the lock is tried; whatever opened is closed in `finally`.
    const watching = this.connect('migration-watch')
    watching.then(
      (watch) => opened.push(watch),
      () => {},
    )
    // Before the connection opens: a run that fails to connect names no migration of an
    // earlier run as its own.
    this.run = {
      ...this.run,
      state: 'idle',
      current: null,
      lockHolder: null,
      blockedBy: [],
      sessionLost: false,
    }
    let session: pg.Client | undefined = options.work
    try {
      const work = options.work ?? (await this.connect('migration'))
      session = work
      if (!options.work) opened.push(work)
      this.active = { pid: this.backendPids.get(work) ?? 0, done }
      let waitingLogged = false
      const locked = await acquireMigrationLock(work, {
        signal: this.abort.signal,
        ...(ifNothingPending && {
          stillNeeded: () =>
            readLedger(work)
              .then((rows) => this.pending(rows))
              .then(
                (pending) => pending.length > 0,
                () => true, // unreadable: keep waiting, the locked run will report it
              ),
        }),
        onWait: (holder) => {
          this.run.state = 'waiting-for-lock'
          this.run.lockHolder = holder
          if (!waitingLogged) {
            waitingLogged = true
            this.opts.logger.info({ holder }, 'waiting for the migration lock')
          }
        },
      })
      if (locked === 'stopped') {
        throw new StopRequestedError('stopped while waiting for the migration lock')
      }
      if (locked === 'not-needed' && ifNothingPending) {
        this.markComplete()
        return ifNothingPending()
      }
      try {
        // Before anything is written: a watch session that cannot open fails the run here,
        // with the lock released and nothing created.
        const watch = await watching
        this.run = { ...this.run, state: 'running', lockHolder: null }
        const result = await fn(work, watch)
        this.markComplete()
        return result
      } finally {
        await releaseMigrationLock(work).catch(() => {})
      }
    } catch (err) {
      let cause = rootCause(err)
      // The cancel `stop()` sent after the grace period: a stop, not a failed migration.
      if (this.stopping && this.run.current !== null && errorCode(cause) === QUERY_CANCELED) {
        cause = new StopRequestedError(
          this.reverting
            ? `the revert of ${this.run.current} was cancelled to stop: it stays applied`
            : `${this.run.current} was cancelled to stop: it is not recorded and runs again next time`,
          { cause },
        )
      }
      // A connection-class error in a migration: did the session go, or did it answer the
      // migration's own statement with that code? It answers a `SELECT 1` in the second case
      // (the migration's transaction was rolled back in applyOnce).
      const sessionLost =
        !(cause instanceof StopRequestedError) &&
        this.run.current !== null &&
        isConnectionError(cause) &&
        !(session && (await succeedsWithin(session.query('SELECT 1'), 1000)))
      this.run =
        cause instanceof StopRequestedError
          ? { ...this.run, state: 'idle', current: null, lockHolder: null }
          : {
              ...this.run,
              state: 'failed',
              lastError: toRunError(cause, this.run.current),
              lockHolder: null,
              // Who blocked it is in the log; nothing runs now, so nothing is blocked.
              blockedBy: [],
              sessionLost,
            }
      throw cause
    } finally {
      this.active = undefined
      resolveDone()
      await watching.catch(() => {})
      await Promise.all(opened.map((c) => endClient(c)))
    }
  }

  /** Applies one migration, retrying the whole transaction with backoff when it hits `lock_timeout`. */
  private async apply(work: pg.Client, watch: pg.Client, m: LoadedMigration): Promise<void> {
    const pid = this.active?.pid ?? 0
    for (let attempt = 1; ; attempt++) {
      if (this.stopping) throw new StopRequestedError(`stopped before ${m.name}`)
      this.run.current = m.name
      const watchdog = this.watchBlockers(watch, pid)
      try {
        const row = await this.applyOnce(work, m)
        this.run.blockedBy = []
        this.opts.logger.info(
          {
            migration: m.name,
            outcome: row.outcome,
            durationMs: row.durationMs,
            changes: row.changes,
          },
          'migration applied',
        )
        return
      } catch (err) {
        if (
          errorCode(err) !== LOCK_NOT_AVAILABLE ||
          attempt >= this.opts.maxLockAttempts ||
          this.stopping
        ) {
          throw err
        }
        const delay = Math.min(100 * 2 ** attempt, 5000) * (0.5 + Math.random() / 2)
        this.opts.logger.warn(
          {
            migration: m.name,
            attempt,
            retryInMs: Math.round(delay),
            blockedBy: this.run.blockedBy,
          },
          'migration hit lock_timeout; retrying',
        )
        await sleep(delay, this.abort.signal)
      } finally {
        await watchdog.stop()
      }
    }
  }

  private async applyOnce(
    work: pg.Client,
    m: LoadedMigration,
  ): Promise<Omit<LedgerRow, 'appliedAt'>> {
    const changes: Change[] = []
    let ranStatements = false
    const started = performance.now()
    const row = (): Omit<LedgerRow, 'appliedAt'> => ({
      name: m.name,
      checksum: m.checksum,
      outcome: outcomeOf(changes, ranStatements, this.vouchedFor(m.name)),
      durationMs: Math.round(performance.now() - started),
      changes,
      appliedBy: this.appliedBy,
    })
    const module = await m.load()
    if (module.transaction === false) {
      // CREATE INDEX CONCURRENTLY and friends: each statement commits alone; the
      // helpers repair what a killed run leaves, and the ledger row comes last.
      await work.query(`SET lock_timeout = ${this.opts.lockTimeoutMs}`)
      try {
        const query: Query = (text, values) => {
          ranStatements = true
          return work.query(text, values)
        }
        await module.up({ name: m.name, context: this.context(work, changes, query) })
        const record = row()
        await insertLedgerRow(work, record)
        return record
      } finally {
        await work.query('RESET lock_timeout').catch(() => {})
      }
    }
    // The transaction opens with the migration's first statement, in the same round trip
    // when that statement has no parameters (one simple-protocol query), else just before
    // it; a migration that runs no statement opens it with its ledger row.
    const begin = `BEGIN; SET LOCAL lock_timeout = ${this.opts.lockTimeoutMs}`
    let begun = false
    const query: Query = async (text, values) => {
      if (begun) return work.query(text, values)
      begun = true
      ranStatements = true
      // Parameters (extended protocol: one statement per message), a query config object
      // from a JavaScript migration, or nothing to run: BEGIN goes first, on its own.
      if (
        typeof text !== 'string' ||
        (values !== undefined && values.length > 0) ||
        text.trim() === ''
      ) {
        await work.query(begin)
        return work.query(text, values)
      }
      // One result per statement: BEGIN's and SET's, then the migration's own, returned
      // as work.query would have returned them (an array only for several statements).
      const results = (await work.query(`${begin}; ${text}`)) as unknown as pg.QueryResult[]
      const own = results.slice(2)
      return (own.length === 1 ? own[0] : own) as never
    }
    try {
      await module.up({ name: m.name, context: this.context(work, changes, query) })
      const record = row()
      // The ledger row and COMMIT in one round trip (simple protocol, escaped literals).
      const insert = ledgerInsertSql(record, (v) => work.escapeLiteral(v))
      await work.query(begun ? `${insert}; COMMIT` : `${begin}; ${insert}; COMMIT`)
      return record
    } catch (err) {
      await work.query('ROLLBACK').catch(() => {})
      throw err
    }
  }

  /** Whether the legacy stamp read at the start of this run covers `name`. */
  private vouchedFor(name: string): boolean {
    const n = migrationNumber(name)
    return this.legacyStamp !== null && n !== null && n <= this.legacyStamp
  }

  /** While a migration runs, notes the sessions that block it (pg_blocking_pids) for `/migrations` and the log. */
  private watchBlockers(watch: pg.Client, pid: number) {
    const every = Math.max(100, Math.min(1000, Math.floor(this.opts.lockTimeoutMs / 3)))
    let inFlight: Promise<unknown> = Promise.resolve()
    let busy = false
    let lastPids = ''
    const timer = setInterval(() => {
      if (busy) return
      busy = true
      inFlight = watch
        .query<{ pid: number; application: string; state: string | null; seconds: number | null }>(
          `SELECT pid, application_name AS application, state,
                  extract(epoch FROM now() - xact_start)::float8 AS seconds
             FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids($1))`,
          [pid],
        )
        .then(({ rows }) => {
          if (rows.length === 0) return
          this.run.blockedBy = rows.map((r) => ({
            pid: r.pid,
            application: r.application,
            state: r.state,
            transactionSeconds: r.seconds === null ? null : Math.round(r.seconds * 10) / 10,
          }))
          const pids = rows.map((r) => r.pid).join(',')
          if (pids !== lastPids) {
            lastPids = pids
            this.opts.logger.warn(
              { migration: this.run.current, blockedBy: this.run.blockedBy },
              'migration is waiting for a lock held by another session',
            )
          }
        })
        .catch(() => {})
        .finally(() => {
          busy = false
        })
    }, every)
    timer.unref()
    return {
      async stop() {
        clearInterval(timer)
        await inFlight
      },
    }
  }

  private async connect(role: string): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.opts.connectionString,
      application_name: `${this.opts.applicationName}:${role}`,
      connectionTimeoutMillis: 5000,
    })
    // A connection that dies while idle must not take the process down with it.
    client.on('error', (err) => this.opts.logger.warn({ err, role }, 'migration connection error'))
    await client.connect()
    try {
      // The club's schema first (CLUB_SCHEMA_FIRST), and the session's pid.
      const setup = (await client.query(
        `SET statement_timeout = ${Math.trunc(this.opts.statementTimeoutMs)};
         ${CLUB_SCHEMA_FIRST};
         SELECT pg_backend_pid() AS pid`,
      )) as unknown as pg.QueryResult[]
      // The session's own pid, in the same round trip: a run watches what blocks it and
      // cancels it by this pid. (The pid of the protocol's key data would be a pooler's
      // where there is one.)
      const pid = setup.at(-1)?.rows[0]?.pid
      if (typeof pid === 'number') this.backendPids.set(client, pid)
      // Without it a backend notices a dead client only when it next writes to it: a killed
      // replica's backfill runs on to the end of its statement, holding its locks (PostgreSQL 14+,
      // Linux; elsewhere the setting is refused and the default stays).
      await client
        .query("SELECT set_config('client_connection_check_interval', '1000', false)")
        .catch(() => {})
    } catch (err) {
      // The session opened but could not be set up: do not leave it open.
      await endClient(client)
      throw err
    }
    return client
  }

  /**
   * Whether a new session opens and answers: tells an outage from a run whose own
   * session was ended (`pg_terminate_backend`, a pooler's idle reaper) on a database
   * that is up. At most `timeoutMs`: a host that stopped answering is not waited on for
   * the whole connection timeout.
   */
  async reachable(timeoutMs = 2000): Promise<boolean> {
    // A bare session (no set-up query: it reads nothing that a lock could hold), ended
    // whatever happens, also when it is still connecting or querying at the deadline.
    const client = new pg.Client({
      connectionString: this.opts.connectionString,
      application_name: `${this.opts.applicationName}:ping`,
      connectionTimeoutMillis: timeoutMs,
    })
    client.on('error', () => {})
    try {
      return await succeedsWithin(
        client.connect().then(() => client.query('SELECT 1')),
        timeoutMs,
      )
    } finally {
      // Also when still connecting or querying at the deadline: a query in progress ends
      // with the socket.
      void endClient(client)
    }
  }

  private async withClient<T>(role: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.connect(role)
    try {
      return await fn(client)
    } finally {
      await endClient(client)
    }
  }
}

/**
 * `already-present` when a migration found everything in place, or changed nothing at all
 * (ran no statement, like the merge point 022); `ran` when it changed something. A migration
 * that ran statements but recorded nothing is taken to have changed something: plain SQL
 * says nothing of what it found. `baseline` instead of `already-present` when the legacy
 * Alembic stamp vouches for the migration: it was recorded on the stamp's word, and the
 * checks confirmed it. A stamp that lies (an object it vouches for is missing) does not
 * make a `baseline`: the migration creates the object and is `ran`.
 */
export function outcomeOf(changes: Change[], ranStatements: boolean, vouched = false): Outcome {
  const unchanged =
    changes.length === 0
      ? !ranStatements
      : changes.every((c) => c.action === 'exists' || c.action === 'unchanged')
  if (!unchanged) return 'ran'
  return vouched ? 'baseline' : 'already-present'
}

function appliedView(row: LedgerRow | undefined, checksum: string | null): MigrationView {
  return {
    name: row?.name ?? '',
    status: 'applied',
    outcome: row?.outcome ?? null,
    appliedAt: row ? row.appliedAt.toISOString() : null,
    durationMs: row?.durationMs ?? null,
    checksum: row?.checksum ?? null,
    checksumMatches: row && checksum ? row.checksum === checksum : null,
    changes: row?.changes ?? [],
  }
}
