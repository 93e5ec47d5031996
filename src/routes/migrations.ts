import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { isSqlState } from '../migrate/errors.js'
import type { Inspection } from '../migrate/migrator.js'
import type { RunError as EngineError } from '../migrate/types.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()])

const Change = Type.Object(
  {
    object: Type.String(),
    action: Type.String(),
    rows: Type.Optional(Type.Integer()),
    detail: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: true },
)

const MigrationEntry = Type.Object({
  name: Type.String(),
  status: Type.String(),
  outcome: Nullable(Type.String()),
  appliedAt: Nullable(Type.String()),
  durationMs: Nullable(Type.Integer()),
  checksum: Nullable(Type.String()),
  checksumMatches: Nullable(Type.Boolean()),
  changes: Type.Array(Change),
})

/** The contract's `{ migration, message, code }`, exactly: PostgreSQL's DETAIL rides in `message`. */
const RunError = Type.Object(
  {
    migration: Nullable(Type.String()),
    message: Type.String(),
    code: Nullable(Type.String()),
  },
  { additionalProperties: false },
)

export const MigrationsReport = Type.Object({
  state: Type.String(),
  applied: Type.Integer(),
  pending: Type.Integer(),
  current: Nullable(Type.String()),
  lastError: Nullable(RunError),
  lockHolder: Nullable(
    Type.Object({
      pid: Type.Integer(),
      application: Type.String(),
      clientAddr: Nullable(Type.String()),
      sessionSeconds: Nullable(Type.Number()),
    }),
  ),
  blockedBy: Type.Array(
    Type.Object({
      pid: Type.Integer(),
      application: Type.String(),
      state: Nullable(Type.String()),
      transactionSeconds: Nullable(Type.Number()),
    }),
  ),
  nextAttemptAt: Nullable(Type.String()),
  inspectedAt: Nullable(Type.String()),
  migrations: Type.Array(MigrationEntry),
  drift: Type.Object({
    status: Type.String(),
    differences: Type.Array(Type.String()),
  }),
})

/** `GET /migrations`: the run and every migration, for the admin (CONTRACT.md). */
export default async function migrationsRoutes(app: FastifyInstance) {
  app.get(
    '/migrations',
    {
      config: { alwaysAvailable: true },
      preHandler: app.requireAdmin,
      schema: {
        summary: 'The migration run and every migration',
        tags: ['operations'],
        security: [{ bearerAuth: [] }],
        response: { 200: MigrationsReport },
      },
    },
    async (request, reply) => {
      const { migrator, supervisor } = app.migrations
      let inspection: Inspection | null
      let run = migrator.view()
      try {
        inspection = await app.migrations.inspect()
        // The run the statuses were computed against, so that `current` agrees with them.
        run = inspection.run
      } catch (err) {
        request.log.warn({ err }, 'ledger unreadable; answering from the last inspection')
        inspection = app.migrations.lastInspection()
      }
      // Never read (the database has been unreachable since boot): every migration of the
      // chain, none known applied, rather than an empty list beside a pending count.
      const migrations =
        inspection?.migrations ?? (await migrator.describe([], run).catch(() => []))
      const status = supervisor.status()
      reply.header('Cache-Control', 'no-store')
      return {
        state: supervisor.complete ? 'complete' : run.state,
        applied: inspection?.applied ?? 0,
        pending: inspection?.pending ?? migrations.length,
        current: run.state === 'running' ? run.current : null,
        lastError: publicRunError(status.lastError ?? run.lastError),
        lockHolder: run.lockHolder,
        blockedBy: run.blockedBy,
        nextAttemptAt: status.nextAttemptAt,
        inspectedAt: inspection?.inspectedAt ?? null,
        migrations,
        drift: inspection?.drift ?? { status: 'unknown', differences: [] },
      }
    },
  )
}

/**
 * A run's error as the contract shows it: the row to fix (DETAIL) after the message, as
 * the CLI prints it, and `code` only when it is a SQLSTATE ("code = PostgreSQL SQLSTATE
 * when there is one"). A Node error's code (`ECONNREFUSED`) is already in its message;
 * `/health` and the log keep it as a field.
 */
function publicRunError(error: EngineError | null): Static<typeof RunError> | null {
  if (error === null) return null
  const { migration, message, code, detail } = error
  return {
    migration,
    message: detail ? `${message}: ${detail}` : message,
    code: isSqlState(code) ? code : null,
  }
}
