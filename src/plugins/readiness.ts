import type { onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import pg from 'pg'
import { endClient } from '../lib/end-client.js'
import type { MigrationBlocker } from '../migrate/supervisor.js'

export type NotReadyReason = MigrationBlocker | 'shutting-down'

declare module 'fastify' {
  interface FastifyInstance {
    readiness: {
      /** Null when ready; otherwise the reason `/health/ready` gives. Reads memory only. */
      reason(): NotReadyReason | null
      database(): { up: boolean; error: string | null; checkedAt: string | null }
      /** Turns readiness to `shutting-down` at once (first step of a graceful stop). */
      beginShutdown(): void
    }
  }
  interface FastifyContextConfig {
    /** Serves while the service is not ready (probes, admin status, docs). */
    alwaysAvailable?: boolean
  }
}

export interface ReadinessOptions {
  connectionString: string
  /** Period of the background `SELECT 1`; keep it below the readiness probe period. */
  checkEveryMs: number
}

/**
 * Readiness from memory: the supervisor's state, a background database check on
 * a connection of its own (so a busy pool cannot fake an outage, and a probe
 * never runs a query), and the shutdown flag. Also the gate that answers 503
 * with Retry-After on every other route until the service is ready.
 */
export default fp(
  async (app, opts: ReadinessOptions) => {
    let shuttingDown = false
    const db = { up: true, error: null as string | null, checkedAt: null as string | null }
    let client: pg.Client | undefined
    let timer: NodeJS.Timeout | undefined
    /** The check in progress, awaited on close; none opens a connection after close. */
    let running: Promise<void> | undefined
    let closed = false

    const drop = async () => {
      const broken = client
      client = undefined
      if (broken) await endClient(broken)
    }
    /** `SELECT 1` on the check's connection, opened first when there is none. */
    const ping = async () => {
      let c = client
      if (!c) {
        if (closed) throw new Error('the service is closing')
        const opened = new pg.Client({
          connectionString: opts.connectionString,
          application_name: 'basketball-api:health',
          connectionTimeoutMillis: Math.max(500, opts.checkEveryMs),
          query_timeout: Math.max(500, opts.checkEveryMs),
        })
        // A connection the server ends (a restart, pg_terminate_backend) is let go at once.
        opened.on('error', () => {
          if (client === opened) void drop()
        })
        client = opened
        c = opened
        await opened.connect()
      }
      await c.query('SELECT 1')
    }

    const check = () => {
      running ??= checkOnce().finally(() => {
        running = undefined
      })
      return running
    }
    const checkOnce = async () => {
      try {
        const reused = client !== undefined
        try {
          await ping()
        } catch (err) {
          // A connection that was fine a period ago and failed now says little about the
          // database (a restart that is already over, a terminated backend): one more try
          // on a new connection before every route is turned away with 503.
          await drop()
          if (!reused) throw err
          await ping()
        }
        if (!db.up) {
          app.log.info('database reachable again')
          // A migration run waiting out its reconnect backoff retries now.
          app.migrations.supervisor.databaseReachable()
        }
        db.up = true
        db.error = null
      } catch (err) {
        if (closed) return // ended by close, not by the database
        if (db.up) app.log.error({ err }, 'database unreachable')
        db.up = false
        db.error = (err as Error).message
        await drop()
      } finally {
        db.checkedAt = new Date().toISOString()
      }
    }

    const reason = (): NotReadyReason | null => {
      if (shuttingDown) return 'shutting-down'
      const blocker = app.migrations.supervisor.blocker()
      // A run that is (re)trying to connect reads `migrating`; the failed check says why better.
      if (!db.up && (blocker === null || blocker === 'migrating')) return 'database-unavailable'
      return blocker
    }

    app.decorate('readiness', {
      reason,
      database: () => ({ ...db }),
      beginShutdown: () => {
        shuttingDown = true
      },
    })

    // A callback hook (no promise per request): it runs on every request, probes included.
    // The gate goes on each route that is not `alwaysAvailable`, ahead of the route's own
    // hooks (auth), rather than on every request: probes do not run it at all, and no
    // request reads `routeOptions` (a getter that builds an object per call) to skip it.
    const gate: onRequestHookHandler = (_request, reply, done) => {
      const why = reason()
      if (why === null) return done()
      reply
        .code(503)
        .header('Retry-After', why === 'shutting-down' ? '1' : '5')
        .send({
          statusCode: 503,
          error: 'Service Unavailable',
          message: `the service is not ready: ${why}`,
        })
    }
    app.addHook('onRoute', (route) => {
      if (route.config?.alwaysAvailable) return
      route.onRequest = [gate, ...(route.onRequest === undefined ? [] : [route.onRequest].flat())]
    })

    app.addHook('onReady', async () => {
      void check()
      timer = setInterval(check, opts.checkEveryMs)
      timer.unref()
    })
    app.addHook('preClose', async () => {
      shuttingDown = true
    })
    app.addHook('onClose', async () => {
      closed = true
      clearInterval(timer)
      // A check in progress ends within its own timeouts (a period each), and its retry
      // opens nothing now. Not ended from here: node-postgres never settles a client ended
      // while it is still connecting (neither the connect nor the end).
      await running
      await drop()
    })
  },
  { name: 'readiness', dependencies: ['migrations'] },
)
