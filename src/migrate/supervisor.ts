import { isConnectionError, StopRequestedError, toRunError } from './errors.js'
import { sleep } from './lock.js'
import type { Migrator, MigratorLogger } from './migrator.js'
import type { RunError } from './types.js'

/** Why the service is not ready, as far as migrations go (CONTRACT.md `/health/ready` reasons). */
export type MigrationBlocker =
  | 'migrating'
  | 'waiting-for-lock'
  | 'migration-failed'
  | 'pending-migrations'
  | 'database-unavailable'

export interface SupervisorOptions {
  /** `false`: never migrate; become ready once another process has applied the chain. */
  migrateOnBoot: boolean
  logger: MigratorLogger
  /** First retry delay after the database could not be reached; doubles up to `maxRetryMs`. */
  retryMs?: number
  /** First retry delay after a migration failed; doubles up to `maxRetryMs`. */
  failedRetryMs?: number
  maxRetryMs?: number
  /** How often to look at the ledger again when migrations are pending and we may not run them. */
  pendingPollMs?: number
}

type Phase =
  | 'starting'
  | 'running'
  | 'complete'
  | 'stopped'
  | Exclude<MigrationBlocker, 'migrating' | 'waiting-for-lock'>

/**
 * Runs the migrator in the background until the chain is applied: a database
 * that cannot be reached and a migration that fails are both retried with a
 * growing backoff, and neither ends the process.
 */
export class MigrationSupervisor {
  private phase: Phase = 'starting'
  private error: RunError | null = null
  private attempt = 0
  private retryAt: Date | null = null
  private loop: Promise<void> | undefined
  private stopped = false
  private readonly wake = new AbortController()
  /** Ends the current retry wait early (see {@link databaseReachable}). */
  private retryEarly: AbortController | undefined
  private readonly opts: Required<SupervisorOptions>

  constructor(
    readonly migrator: Migrator,
    options: SupervisorOptions,
  ) {
    this.opts = {
      retryMs: 1000,
      failedRetryMs: 5000,
      maxRetryMs: 60_000,
      pendingPollMs: 2000,
      ...options,
    }
  }

  /** Starts the loop once; later calls return the same promise. */
  start(): Promise<void> {
    this.loop ??= this.run()
    return this.loop
  }

  /** Resolves when the chain is applied or the supervisor stopped. */
  settled(): Promise<void> {
    return this.start()
  }

  /** Stops retrying, lets a running migration commit or roll back, and releases the lock. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.phase !== 'complete') this.phase = 'stopped'
    this.wake.abort()
    await this.migrator.stop()
    await this.loop
  }

  /**
   * The health check reached the database again: if the loop is waiting to retry
   * after the database was unreachable, retry now rather than after the backoff
   * (which grows to `maxRetryMs`), so readiness follows the database within a probe period.
   */
  databaseReachable(): void {
    if (this.phase === 'database-unavailable') this.retryEarly?.abort()
  }

  get complete(): boolean {
    return this.phase === 'complete'
  }

  /** Null once the chain is applied; otherwise why the service is not ready. */
  blocker(): MigrationBlocker | null {
    switch (this.phase) {
      case 'complete':
        return null
      case 'starting':
      case 'stopped':
        return 'migrating'
      case 'running':
        return this.migrator.view().state === 'waiting-for-lock' ? 'waiting-for-lock' : 'migrating'
      default:
        return this.phase
    }
  }

  /** The last failure, the attempt count and when the next attempt is due. */
  status() {
    return {
      lastError: this.error,
      attempt: this.attempt,
      nextAttemptAt: this.retryAt?.toISOString() ?? null,
    }
  }

  private async run(): Promise<void> {
    let failures = 0
    while (!this.stopped) {
      this.attempt++
      try {
        if (this.opts.migrateOnBoot) {
          this.phase = 'running'
          await this.migrator.up()
          this.finish()
          return
        }
        if ((await this.migrator.pending()).length === 0) {
          this.finish()
          return
        }
        this.phase = 'pending-migrations'
        this.error = null
        await this.pause(this.opts.pendingPollMs)
      } catch (err) {
        if (err instanceof StopRequestedError || this.stopped) return
        failures++
        // The migration the run was applying when it failed, if any (the run clears it
        // when it starts, so a failure to connect names none).
        const view = this.migrator.view()
        const migration = view.current
        // A connection-class error in a migration's own statement (an `ALTER DATABASE` naming
        // no database) is that migration's defect. Its session gone is an outage only when
        // the database does not answer a new session either: the session alone ended
        // (`pg_terminate_backend`, a pooler's reaper) is a failed attempt at that
        // migration, retried as soon as an outage would be.
        const lost = isConnectionError(err) && (migration === null || view.sessionLost === true)
        const unreachable = lost && (migration === null || !(await this.migrator.reachable()))
        if (this.stopped) return
        this.phase = unreachable ? 'database-unavailable' : 'migration-failed'
        this.error = toRunError(err, migration)
        const base = lost ? this.opts.retryMs : this.opts.failedRetryMs
        const delay = Math.min(base * 2 ** (failures - 1), this.opts.maxRetryMs)
        this.retryAt = new Date(Date.now() + delay)
        this.opts.logger.error(
          { err: this.error, attempt: this.attempt, retryInMs: delay },
          unreachable
            ? 'database unavailable; will retry'
            : lost
              ? "the migration's session was lost; will retry"
              : 'migration failed; will retry',
        )
        await this.pause(delay)
        this.retryAt = null
      }
    }
  }

  private finish() {
    this.phase = 'complete'
    this.error = null
    this.opts.logger.info({ attempt: this.attempt }, 'migrations complete; ready')
  }

  /** Waits `ms`, or less when stopped or when the database is reachable again. */
  private async pause(ms: number) {
    const early = new AbortController()
    this.retryEarly = early
    try {
      await sleep(ms, AbortSignal.any([this.wake.signal, early.signal]))
    } finally {
      if (this.retryEarly === early) this.retryEarly = undefined
    }
  }
}
