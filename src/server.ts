import { join } from 'node:path'
import { setImmediate } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import type { EmbeddedDatabase } from './embedded.js'
import { trackConnections } from './lib/connections.js'
import { createLogger } from './logger.js'

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const
/**
 * A stop signal repeated this soon after the first is the same request delivered twice, not
 * an operator insisting; a later one still exits 1 at once.
 */
const REPEAT_WINDOW_MS = 1000

/** Production entry: configuration, logger, embedded database, listen, graceful stop. */
async function main() {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`basketball-api: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  const logger = createLogger(config.LOG_LEVEL)

  let embedded: EmbeddedDatabase | undefined
  let databaseUrl = config.DATABASE_URL
  let adminToken = config.ADMIN_TOKEN
  if (databaseUrl === undefined) {
    const { startEmbeddedDatabase } = await import('./embedded.js')
    embedded = await startEmbeddedDatabase(config.DATA_DIR, logger)
    databaseUrl = embedded.url
    if (adminToken === undefined) {
      adminToken = embedded.adminToken
      // Local development only: the token lives in DATA_DIR/secrets.json and is shown once per start.
      logger.info(
        { adminToken },
        `embedded database: admin token (kept in ${join(config.DATA_DIR, 'secrets.json')})`,
      )
    }
  }
  if (adminToken === undefined) throw new ConfigError('ADMIN_TOKEN is required')
  if (adminToken.length < 16) logger.warn('ADMIN_TOKEN is shorter than 16 characters')

  const app = await buildApp({
    config,
    databaseUrl,
    migrationDatabaseUrl: config.MIGRATION_DATABASE_URL,
    adminToken,
    logger,
  })

  const connections = trackConnections(app.server)
  let stopping: { signal: NodeJS.Signals | null; at: number } | undefined
  // close-with-grace keeps the deadline and the uncaught-error path; SIGTERM and SIGINT are
  // taken here, because it exits 1 on any second signal, and a stop signal often comes twice
  // at once: a process group's (Ctrl-C, systemd, `kill -- -pgid`) plus npm passing it on.
  const grace = closeWithGrace(
    { delay: config.SHUTDOWN_TIMEOUT_MS, logger, skip: [...STOP_SIGNALS] },
    async ({ err }) => {
      stopping ??= { signal: null, at: performance.now() }
      if (err) logger.error({ err }, 'stopping after an uncaught error')
      else logger.info({ signal: stopping.signal }, 'shutting down: draining requests')
      app.readiness.beginShutdown()
      // Still listening while a migration in progress commits or rolls back (up to half of
      // SHUTDOWN_TIMEOUT_MS): probes get 503 shutting-down rather than a refused connection.
      await app.migrations.supervisor.stop()
      // Requests in flight are answered; a connection without one closes as soon as it has
      // none, instead of holding the stop until it is forced.
      const reaper = setInterval(() => connections.drainPass(), 100)
      connections.drainPass()
      // Still listening while the requests in flight at the signal are answered: a client
      // that comes meanwhile (a probe, a request routed before the endpoints changed) gets
      // 503 `shutting-down` rather than a refused connection.
      await connections.answered()
      // Let the event loop take connections it has already been told of before the
      // listener closes: closing it drops them, and their clients see a reset.
      await setImmediate()
      await app.close().finally(() => clearInterval(reaper))
      await embedded?.stop()
      logger.info('stopped')
    },
  )
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      const now = performance.now()
      if (stopping === undefined) {
        stopping = { signal, at: now }
        void grace.close()
      } else if (now - stopping.at < REPEAT_WINDOW_MS) {
        logger.warn({ signal }, 'stop signal repeated while stopping: taken as the same one')
      } else {
        logger.error({ signal }, `second ${signal}, exiting`)
        process.exit(1)
      }
    })
  }

  await app.listen({ port: config.PORT, host: config.HOST })
}

main().catch((err) => {
  process.stderr.write(
    `basketball-api: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
  )
  process.exit(1)
})
