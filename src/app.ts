import { isUtf8 } from 'node:buffer'
import fastifyPostgres from '@fastify/postgres'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify'
import type { ClientBase } from 'pg'
import type { Config } from './config.js'
import { HttpError } from './lib/http-error.js'
import { ConnectionStalledError, StallGuard } from './lib/stall-guard.js'
import { LazyCompilers } from './lib/validators.js'
import { CLUB_SCHEMA_FIRST } from './migrate/ledger.js'
import auth from './plugins/auth.js'
import errors, { rejectionOf } from './plugins/errors.js'
import methodNotAllowed from './plugins/method-not-allowed.js'
import metrics from './plugins/metrics.js'
import migrations from './plugins/migrations.js'
import pathIds from './plugins/path-ids.js'
import readiness from './plugins/readiness.js'
import swagger from './plugins/swagger.js'
import docsRoutes from './routes/docs.js'
import gamesRoutes from './routes/games.js'
import healthRoutes from './routes/health.js'
import migrationsRoutes from './routes/migrations.js'
import playersRoutes from './routes/players.js'
import rosterRoutes from './routes/roster.js'
import teamsRoutes from './routes/teams.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The route schemas' lazy compilers (`warm()` compiles what no request has used yet). */
    routeSchemas: LazyCompilers
  }
}

export interface AppOptions {
  config: Config
  /** The database to serve and migrate (DATABASE_URL, or the embedded one). */
  databaseUrl: string
  /** Connection for migrations and their lock (MIGRATION_DATABASE_URL): direct, not through PgBouncer. */
  migrationDatabaseUrl?: string | undefined
  adminToken: string
  /** A pino logger, or Fastify logger options (tests pass `false`). */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger']
  /** Period of the background ledger inspection once ready (default 30 s; tests shorten it). */
  inspectEveryMs?: number
}

const MAX_PARAM_LENGTH = 200
const ABOVE_INFO = new Set(['warn', 'error', 'fatal', 'silent'])

/**
 * One log line per request, with the request in it, instead of Fastify's two; a request
 * refused with a 4xx carries why in that line (`rejected`), and a 404 writes no line of
 * its own: a flood of bad requests writes one line per request, not two.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest() {}

  override routeNotFound() {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ) {
    // Probes log at warn (src/routes/health.ts): build no line that would be dropped.
    if (!error && ABOVE_INFO.has(reply.log.level)) return
    const rejected = rejectionOf(request)
    const line = { req: request, res: reply, responseTime: reply.elapsedTime }
    if (error) reply.log.error({ ...line, err: error }, 'request errored')
    else if (rejected) reply.log.info({ ...line, rejected }, 'request completed')
    else reply.log.info(line, 'request completed')
  }
}

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/

/** A Content-Encoding other than `identity` (which names no coding). */
function isEncoded(header: string | undefined): boolean {
  if (header === undefined) return false
  return header.split(',').some((coding) => !['', 'identity'].includes(coding.trim().toLowerCase()))
}

/** Every string and key of a parsed JSON value is well-formed UTF-16 (no lone surrogate). */
function isWellFormedJson(value: unknown): boolean {
  // A stack, not recursion: a body within the limit can nest deeper than the call stack.
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'string') {
      if (!(v as string & { isWellFormed(): boolean }).isWellFormed()) return false
    } else if (Array.isArray(v)) {
      // One by one: spreading a long array into push() can exceed the arguments limit.
      for (const item of v) stack.push(item)
    } else if (v !== null && typeof v === 'object') {
      for (const [key, item] of Object.entries(v)) stack.push(key, item)
    }
  }
  return true
}

/** Builds the app; never listens (src/server.ts does). */
export async function buildApp(opts: AppOptions) {
  const { config } = opts
  const compilers = new LazyCompilers()
  const loggerIsInstance =
    typeof opts.logger === 'object' && opts.logger !== null && 'child' in opts.logger
  const app = Fastify({
    ...(loggerIsInstance
      ? { loggerInstance: opts.logger as FastifyBaseLogger }
      : { logger: (opts.logger as FastifyServerOptions['logger']) ?? false }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    // A request (headers and body) must arrive within 30 s (Node checks every 30 s): a
    // client trickling a body a byte at a time does not keep its socket forever.
    requestTimeout: 30_000,
    logController: new OneLinePerRequest(),
    // Readiness answers `shutting-down` itself while in-flight requests drain.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    schemaController: { compilersFactory: { buildSerializer: compilers.serializerFactory() } },
    // Router errors (bad URL encoding, over-long params) would otherwise bypass the error
    // handler, answering e.g. 414 with `error: "Bad Request"`.
    frameworkErrors: (error, request, reply) => {
      // No hook runs for it, so the metrics plugin is told (`unmatched`).
      request.server.metrics?.countRefused(request, reply)
      reply.send(error as never)
    },
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(compilers.validatorCompiler())
  // A JSON content type with an empty body (many HTTP clients set the header on every
  // request) is no body, as without the header: a DELETE or a roster PUT needs none, and
  // a route that needs one still says "body must be object". Otherwise Fastify's parser.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  // JSON is the only body any route takes: text/plain (parsed by default) is a 415 too.
  app.removeContentTypeParser(['application/json', 'text/plain'])
  // JSON is UTF-8 (RFC 8259): a body that is not is a 400, not text with U+FFFD in place
  // of the bytes, stored as if the client had sent that. The same for a lone surrogate
  // escape (`"\ud800"`): valid JSON syntax, but no Unicode text, and PostgreSQL would
  // store U+FFFD for it. A compressed body is not decoded: a Content-Encoding is a 415
  // (RFC 9110, 15.5.16), where it was ignored (a gzip body read as bad UTF-8, a plain
  // body labelled `br` stored as if uncompressed).
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer
    if (bytes.length === 0) return done(null, undefined)
    if (isEncoded(request.headers['content-encoding'])) {
      return done(
        new HttpError(
          415,
          'a Content-Encoding is not supported: send the body uncompressed',
          'UNSUPPORTED_CONTENT_ENCODING',
          { 'Accept-Encoding': 'identity' },
        ),
      )
    }
    if (!isUtf8(bytes)) return done(new HttpError(400, 'body is not valid UTF-8', 'INVALID_UTF8'))
    const text = bytes.toString('utf8')
    parseJson(request, text, (err, value) => {
      // Only a body with a surrogate escape in it is walked (the walk decides: the escape
      // may be a paired one, or text such as `"\\ud800"`).
      if (err || !SURROGATE_ESCAPE.test(text) || isWellFormedJson(value)) done(err, value)
      else {
        done(
          new HttpError(
            400,
            'body holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape), which is no Unicode text',
            'INVALID_UNICODE',
          ),
        )
      }
    })
  })
  app.decorate('routeSchemas', compilers)
  app.addHook('onListen', (done) => {
    // Once ready (LazyCompilers): compiling earlier would compete for the CPU with the
    // migrations that readiness waits for, here or in a replica booting beside this one.
    void app.migrations.supervisor.settled().then(() => {
      if (!app.migrations.supervisor.complete) return
      setTimeout(() => {
        compilers.warm().catch((err) => app.log.error({ err }, 'a route schema does not compile'))
      }, 250).unref()
    })
    done()
  })
  await app.register(errors)
  await app.register(auth, { adminToken: opts.adminToken })
  // A query on a connection that stopped answering (a failover, a half-open TCP
  // connection) is given up after DATABASE_QUERY_TIMEOUT_MS + 1 s of silence, and the
  // connection leaves the pool; the server-side statement_timeout (below) comes a second
  // earlier for a query that is only slow.
  const stallGuard = new StallGuard(config.DATABASE_QUERY_TIMEOUT_MS + 1000)
  await app.register(fastifyPostgres, {
    connectionString: opts.databaseUrl,
    application_name: 'basketball-api',
    max: 10,
    connectionTimeoutMillis: 5000,
    // A query stuck behind a lock is cancelled by the server (57014, answered 503), and its
    // backend does not linger. A SET, not a startup parameter: PgBouncer refuses unknown
    // startup parameters. pg-pool awaits it before handing the connection out, and a
    // connection it fails on is not handed out at all. The stall guard covers it too.
    // (@types/pg says the hook returns void; pg-pool 3.14 awaits what it returns.)
    onConnect: ((client: ClientBase) =>
      stallGuard.arm(client, () =>
        // The club's schema first, as for the migrations (src/migrate/ledger.ts): a copy
        // of `players` in a schema named after the role must not be what requests read.
        client.query(
          `SET statement_timeout = ${config.DATABASE_QUERY_TIMEOUT_MS}; ${CLUB_SCHEMA_FIRST}`,
        ),
      )) as (client: ClientBase) => void,
    // A peer that vanished without a FIN is found by TCP keepalive, not after ~15 min of
    // retransmissions.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  })
  // An idle pooled connection that the server drops must not crash the process. A stall
  // during a new connection's set-up comes here too: usually the request it was for fails
  // with it and logs it (503), so `info` here; but a request that gave up waiting first
  // (the pool's 5 s) logged only its own timeout.
  app.pg.pool.on('error', (err) => {
    if (err instanceof ConnectionStalledError) {
      app.log.info({ err }, 'a new database connection stopped answering during its set-up')
    } else {
      app.log.warn({ err }, 'idle database connection lost')
    }
  })
  stallGuard.track(app.pg.pool)
  await app.register(migrations, {
    connectionString: opts.migrationDatabaseUrl ?? opts.databaseUrl,
    migrationsDir: config.MIGRATIONS_DIR,
    migrateOnBoot: config.MIGRATE_ON_BOOT,
    lockTimeoutMs: config.MIGRATION_LOCK_TIMEOUT_MS,
    statementTimeoutMs: config.MIGRATION_STATEMENT_TIMEOUT_MS,
    stopGraceMs: Math.max(1000, Math.floor(config.SHUTDOWN_TIMEOUT_MS / 2)),
    inspectEveryMs: opts.inspectEveryMs,
  })
  await app.register(readiness, {
    connectionString: opts.databaseUrl,
    checkEveryMs: config.HEALTH_CHECK_INTERVAL_MS,
  })
  // First: it mirrors every route added after it to tell a wrong method (405) from a
  // wrong path, `/metrics` among them.
  await app.register(methodNotAllowed, { maxParamLength: MAX_PARAM_LENGTH })
  // Before every route: the OpenAPI document is collected as routes are added.
  await app.register(swagger)
  // Before the routes too: its onResponse hook only reaches routes registered after it.
  await app.register(metrics)
  // Before the routes: it adds its check to each route with an id in its path.
  await app.register(pathIds)
  await app.register(docsRoutes)
  await app.register(healthRoutes)
  await app.register(migrationsRoutes)
  await app.register(teamsRoutes)
  await app.register(rosterRoutes)
  await app.register(playersRoutes)
  await app.register(gamesRoutes)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
