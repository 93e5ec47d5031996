import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'

const Probe = Type.Object({
  status: Type.Union([Type.Literal('pass'), Type.Literal('fail')]),
  reason: Type.Optional(Type.String()),
})

const Check = Type.Object(
  {
    status: Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('fail')]),
    observedValue: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    output: Type.Optional(Type.String()),
    time: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)

const HealthReport = Type.Object({
  status: Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('fail')]),
  checks: Type.Record(Type.String(), Type.Array(Check)),
})

const probeConfig = { alwaysAvailable: true }
/** Levels at which the probes keep the app's own level (already at least as quiet as warn). */
const PROBE_QUIETER = new Set(['warn', 'error', 'fatal', 'silent'])

/**
 * Probes: `/health/live` and `/health/ready` answer from memory (no query per
 * call, `Cache-Control: no-store`, HEAD too); `/health` adds details, with error
 * texts only for the admin.
 */
export default async function healthRoutes(app: FastifyInstance) {
  // Probes arrive every few seconds from every kubelet: an info line each would cost more
  // than answering them, so they log at warn at most (never more than LOG_LEVEL allows).
  // One logger for all probe requests instead of a child per request (Fastify's default): a
  // child at another level rebuilds every log method, ~0.3 µs of a ~7 µs probe. A probe's
  // rare warning carries its URL and status, not a request id: a probe logs nothing else.
  const quieter = PROBE_QUIETER.has(app.log.level)
  const probeLog = quieter ? app.log : app.log.child({}, { level: 'warn' })
  const probeLogger = { childLoggerFactory: () => probeLog }
  app.get(
    '/health/live',
    { config: probeConfig, ...probeLogger, schema: { hide: true, response: { 200: Probe } } },
    async (_request, reply) => {
      reply.header('Cache-Control', 'no-store')
      return { status: 'pass' as const }
    },
  )

  app.get(
    '/health/ready',
    {
      config: probeConfig,
      ...probeLogger,
      schema: { hide: true, response: { 200: Probe, 503: Probe } },
    },
    async (_request, reply) => {
      reply.header('Cache-Control', 'no-store')
      const reason = app.readiness.reason()
      if (reason === null) return { status: 'pass' as const }
      return reply.code(503).send({ status: 'fail' as const, reason })
    },
  )

  app.get(
    '/health',
    {
      config: probeConfig,
      schema: { hide: true, response: { 200: HealthReport, 503: HealthReport } },
    },
    async (request, reply) => {
      const admin = app.isAdmin(request)
      const reason = app.readiness.reason()
      const blocker = app.migrations.supervisor.blocker()
      const db = app.readiness.database()
      const { lastError } = app.migrations.supervisor.status()
      const inspection = app.migrations.lastInspection()
      const checks: Record<string, Array<Record<string, unknown>>> = {
        'migrations:state': [
          {
            // Ready, but ledger rows of this build were lost since: warn (not re-applied
            // while serving; see the migrations plugin).
            status:
              reason === 'shutting-down' || blocker !== null
                ? 'fail'
                : (inspection?.pending ?? 0) > 0
                  ? 'warn'
                  : 'pass',
            observedValue: blocker ?? 'complete',
            ...(admin && lastError
              ? {
                  output: [lastError.code, lastError.message, lastError.detail]
                    .filter((part) => part !== null && part !== '')
                    .join(' '),
                }
              : {}),
          },
        ],
        'database:connection': [
          {
            status: db.up ? 'pass' : 'fail',
            ...(db.checkedAt ? { time: db.checkedAt } : {}),
            ...(admin && db.error ? { output: db.error } : {}),
          },
        ],
      }
      if (inspection) {
        checks['migrations:unknown'] = [
          { status: inspection.unknown > 0 ? 'warn' : 'pass', observedValue: inspection.unknown },
        ]
        checks['migrations:drift'] = [
          {
            status: inspection.drift.status === 'drift' ? 'warn' : 'pass',
            observedValue: inspection.drift.status,
            ...(admin && inspection.drift.differences.length > 0
              ? { output: inspection.drift.differences.join('; ') }
              : {}),
          },
        ]
        checks['migrations:checksum'] = [
          {
            status: inspection.checksumMismatches > 0 ? 'warn' : 'pass',
            observedValue: inspection.checksumMismatches,
          },
        ]
      }
      const statuses = Object.values(checks).flatMap((list) => list.map((c) => c.status))
      const status = reason !== null ? 'fail' : statuses.includes('warn') ? 'warn' : 'pass'
      reply
        .code(status === 'fail' ? 503 : 200)
        .header('Cache-Control', 'no-store')
        .type('application/health+json')
      return { status, checks }
    },
  )
}
