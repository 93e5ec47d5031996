import fp from 'fastify-plugin'
import { type Inspection, Migrator } from '../migrate/migrator.js'
import { MigrationSupervisor } from '../migrate/supervisor.js'

declare module 'fastify' {
  interface FastifyInstance {
    migrations: {
      migrator: Migrator
      supervisor: MigrationSupervisor
      /** The last ledger/drift inspection, refreshed in the background; never read per probe. */
      lastInspection(): Inspection | null
      /** Reads the ledger and catalog now (admin routes) and caches the result. */
      inspect(): Promise<Inspection>
    }
  }
}

export interface MigrationsPluginOptions {
  connectionString: string
  migrationsDir?: string | undefined
  migrateOnBoot: boolean
  lockTimeoutMs: number
  /** `statement_timeout` of the migration sessions (0: none, whatever the role's default). */
  statementTimeoutMs?: number
  /** How long shutdown lets a running migration finish before cancelling it. */
  stopGraceMs: number
  /** How often the cached inspection (unknown rows, drift) is refreshed once ready. */
  inspectEveryMs?: number
}

/**
 * Adapts the migration engine to Fastify: starts the supervisor in the
 * background once the app is ready (the server listens first), keeps an
 * inspection for `/health`, and on close lets a running migration commit or
 * roll back and releases the lock.
 */
export default fp(
  async (app, opts: MigrationsPluginOptions) => {
    const logger = app.log.child({ component: 'migrations' })
    const migrator = new Migrator({
      connectionString: opts.connectionString,
      migrationsDir: opts.migrationsDir,
      lockTimeoutMs: opts.lockTimeoutMs,
      statementTimeoutMs: opts.statementTimeoutMs,
      stopGraceMs: opts.stopGraceMs,
      logger,
    })
    const supervisor = new MigrationSupervisor(migrator, {
      migrateOnBoot: opts.migrateOnBoot,
      logger,
    })
    let cached: Inspection | null = null
    let cachedSeq = 0
    let started = 0
    let timer: NodeJS.Timeout | undefined
    let reportedPending = 0

    // Inspections overlap (the background refresh, an admin's /migrations): the one that
    // started last is kept, not the one that finished last, which may have read an older ledger.
    const inspect = async () => {
      const seq = ++started
      const inspection = await migrator.inspect()
      if (seq > cachedSeq) {
        cached = inspection
        cachedSeq = seq
      }
      return inspection
    }
    const refresh = () =>
      inspect().then(
        (i) => {
          if (i.unknown > 0 || i.drift.status === 'drift' || i.checksumMismatches > 0) {
            logger.warn(
              { unknown: i.unknown, drift: i.drift, checksumMismatches: i.checksumMismatches },
              'the database differs from this build',
            )
          }
          // Pending again once complete: a ledger row deleted by hand, or an older backup
          // restored under running replicas. Reported, not applied: the inspection may run
          // in the middle of a restore (tables made, rows not yet loaded), where DDL of its
          // own would wreck it. A boot (with MIGRATE_ON_BOOT) or the migrate CLI applies
          // them. Logged when the count changes, not at every inspection.
          if (supervisor.complete && i.pending !== reportedPending) {
            if (i.pending > 0) {
              logger.warn(
                { pending: i.pending },
                `migrations of this build are pending again (a ledger row deleted, or an older backup restored); ${
                  opts.migrateOnBoot
                    ? 'a restart or `npm run migrate -- up` applies them'
                    : 'the migrate job (`npm run migrate -- up`) applies them: with MIGRATE_ON_BOOT=false a restarted replica stays unready until then'
                }`,
              )
            } else if (reportedPending > 0) {
              logger.info('no migration of this build is pending any more')
            }
            reportedPending = i.pending
          }
        },
        (err) => logger.warn({ err }, 'could not inspect the ledger'),
      )

    app.decorate('migrations', { migrator, supervisor, lastInspection: () => cached, inspect })

    app.addHook('onReady', async () => {
      // Not awaited: probes must answer while the chain runs.
      void supervisor.start().then(async () => {
        if (!supervisor.complete) return
        await refresh()
        timer = setInterval(refresh, opts.inspectEveryMs ?? 30_000)
        timer.unref()
      })
    })

    let stopping: Promise<void> | undefined
    app.addHook('preClose', async () => {
      // Stop at once (no new migration starts, a lock wait ends); the rest is awaited in onClose.
      stopping = supervisor.stop()
    })
    app.addHook('onClose', async () => {
      clearInterval(timer)
      await (stopping ?? supervisor.stop())
    })
  },
  { name: 'migrations' },
)
