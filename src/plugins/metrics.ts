import type { FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { RunState } from '../migrate/types.js'
import type { NotReadyReason } from './readiness.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: {
      /** This app's own registry (never prom-client's global one: tests build many apps). */
      registry: Registry
      /**
       * Counts a request the router refused (bad URL encoding, an over-long parameter)
       * under `unmatched` once its answer is out: Fastify runs no hook for it.
       */
      countRefused(request: FastifyRequest, reply: FastifyReply): void
    }
  }
}

export interface MetricsPluginOptions {
  /** Routes (patterns) left out of the request histogram: probe and scrape traffic. */
  excludeRoutes?: string[]
  /** Process and Node.js metrics (CPU, memory, event loop, GC); default true. */
  defaultMetrics?: boolean
}

const RUN_STATES: RunState[] = ['idle', 'waiting-for-lock', 'running', 'complete', 'failed']
const REASONS: NotReadyReason[] = [
  'migrating',
  'waiting-for-lock',
  'migration-failed',
  'pending-migrations',
  'database-unavailable',
  'shutting-down',
]
const DRIFT = ['none', 'drift', 'unknown'] as const

/**
 * `GET /metrics` in Prometheus' text format, for the admin token only: request
 * durations by route pattern, and the migration and readiness state the probes
 * answer from. Every value comes from memory (the cached ledger inspection), so
 * a scrape never queries the database.
 */
export default fp(
  async (app, opts: MetricsPluginOptions) => {
    const registry = new Registry()
    const registers = [registry]
    const excluded = new Set(opts.excludeRoutes ?? ['/health/live', '/health/ready', '/metrics'])
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })

    const requests = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    // Route patterns only (never the raw URL): bounded label values whatever clients send.
    // One hook per instrumented route, with its pattern in the closure, so that a request
    // never reads `routeOptions` (a getter that builds an object per call) and probes run
    // only the cheap 404 check below; callback hooks, not async ones: no promise per request.
    app.addHook('onRoute', (route) => {
      if (excluded.has(route.url)) return
      const pattern = route.url
      const observe: onResponseHookHandler = (request, reply, done) => {
        requests.observe(
          { method: request.method, route: pattern, status_code: String(reply.statusCode) },
          reply.elapsedTime / 1000,
        )
        done()
      }
      route.onResponse = [
        ...(route.onResponse === undefined ? [] : [route.onResponse].flat()),
        observe,
      ]
    })
    // Requests that matched no route (404s), under one label; `countRefused` below adds
    // those the router refused.
    app.addHook('onResponse', (request, reply, done) => {
      if (request.is404) {
        requests.observe(
          { method: request.method, route: 'unmatched', status_code: String(reply.statusCode) },
          reply.elapsedTime / 1000,
        )
      }
      done()
    })

    const ready = new Gauge({
      name: 'basketball_api_ready',
      help: '1 when /health/ready answers 200, else 0',
      registers,
      collect() {
        ready.set(app.readiness.reason() === null ? 1 : 0)
      },
    })
    const reason = new Gauge({
      name: 'basketball_api_not_ready_reason',
      help: 'The reason /health/ready gives: 1 for the current one, 0 for the others',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        const now = app.readiness.reason()
        for (const r of REASONS) reason.set({ reason: r }, r === now ? 1 : 0)
      },
    })
    const runState = new Gauge({
      name: 'basketball_api_migration_run_state',
      help: 'The migration run as /migrations shows it: 1 for the current state',
      labelNames: ['state'] as const,
      registers,
      collect() {
        const { supervisor, migrator } = app.migrations
        const now = supervisor.complete ? 'complete' : migrator.view().state
        for (const s of RUN_STATES) runState.set({ state: s }, s === now ? 1 : 0)
      },
    })
    const counts = new Gauge({
      name: 'basketball_api_migrations',
      help: 'Migrations by status, from the last ledger inspection',
      labelNames: ['status'] as const,
      registers,
      collect() {
        counts.reset()
        const i = app.migrations.lastInspection()
        if (!i) return
        counts.set({ status: 'applied' }, i.applied)
        counts.set({ status: 'pending' }, i.pending)
        counts.set({ status: 'unknown' }, i.unknown)
      },
    })
    const mismatches = new Gauge({
      name: 'basketball_api_migration_checksum_mismatches',
      help: 'Applied migrations whose source changed since, from the last ledger inspection',
      registers,
      collect() {
        mismatches.reset()
        const i = app.migrations.lastInspection()
        if (i) mismatches.set(i.checksumMismatches)
      },
    })
    const drift = new Gauge({
      name: 'basketball_api_schema_drift',
      help: 'Schema against the chain: 1 for the current status (none, drift, unknown)',
      labelNames: ['status'] as const,
      registers,
      collect() {
        drift.reset()
        const i = app.migrations.lastInspection()
        if (!i) return
        for (const s of DRIFT) drift.set({ status: s }, s === i.drift.status ? 1 : 0)
      },
    })
    const durations = new Gauge({
      name: 'basketball_api_migration_duration_seconds',
      help: 'How long each applied migration took, from the ledger',
      labelNames: ['name', 'outcome'] as const,
      registers,
      collect() {
        durations.reset()
        for (const m of app.migrations.lastInspection()?.migrations ?? []) {
          if (m.durationMs === null) continue
          durations.set({ name: m.name, outcome: m.outcome ?? 'unknown' }, m.durationMs / 1000)
        }
      },
    })

    app.decorate('metrics', {
      registry,
      countRefused(request: FastifyRequest, reply: FastifyReply) {
        // Its own clock: Fastify starts none for a request its router refused.
        const started = performance.now()
        reply.raw.once('finish', () => {
          requests.observe(
            { method: request.method, route: 'unmatched', status_code: String(reply.statusCode) },
            (performance.now() - started) / 1000,
          )
        })
      },
    })

    app.get(
      '/metrics',
      {
        config: { alwaysAvailable: true },
        preHandler: app.requireAdmin,
        schema: {
          summary: 'Prometheus metrics',
          tags: ['operations'],
          security: [{ bearerAuth: [] }],
        },
      },
      async (_request, reply) => {
        reply.header('Cache-Control', 'no-store').type(registry.contentType)
        return registry.metrics()
      },
    )

    app.addHook('onClose', async () => {
      registry.clear()
    })
  },
  { name: 'metrics', dependencies: ['auth', 'migrations', 'readiness'] },
)
