import type { FastifyRequest } from 'fastify'
import pino from 'pino'

/** Query parameters whose values are logged (when they are a number): ids and sizes. */
const LOGGED_QUERY_VALUES = new Set(['teamId', 'limit'])
/** The routes' other query parameters: their names are logged, not their values. */
const QUERY_NAMES = new Set(['search', 'cursor'])
const NUMBER = /^[0-9]{1,12}$/

/**
 * The request's URL as the access line shows it: the path, and the query with every
 * value replaced by `[redacted]` but a number given as `teamId` or `limit`; a name no
 * route takes is redacted too. The club's players are children: `search` is a name
 * someone typed, and a players `cursor` holds the last and first name of a page's last
 * row (base64url). A token pasted into the query (`?token=…`) is not kept either.
 */
export function loggedUrl(url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const parts = url.slice(q + 1).split('&')
  for (const [i, part] of parts.entries()) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const key = eq === -1 ? part : part.slice(0, eq)
    if (LOGGED_QUERY_VALUES.has(key) && (eq === -1 || NUMBER.test(part.slice(eq + 1)))) continue
    if (LOGGED_QUERY_VALUES.has(key) || QUERY_NAMES.has(key)) {
      if (eq !== -1) parts[i] = `${key}=[redacted]`
    } else {
      parts[i] = '[redacted]'
    }
  }
  return `${url.slice(0, q)}?${parts.join('&')}`
}

/**
 * The service's logger: JSON lines on stdout (or `destination`), at `level`.
 *
 * The `req` serializer is Fastify's (method, url, host and peer, never headers) with the
 * query's values redacted (`loggedUrl`). No `redact`: pino redacts a key's value after
 * that key's serializer, so a path such as
 * `req.headers.authorization` matched nothing, while the redactor's copy of every
 * request object cost ~4 µs of CPU per logged request (bench/README.md). Nothing logs a
 * connection config, a password or the token; test/server/logger.test.ts reads every
 * line of admin, unauthorised and failing requests for them.
 */
export function createLogger(level: string, destination?: pino.DestinationStream) {
  return pino(
    {
      level,
      // pg-pool puts the whole client on an error it reports (`err.client`): ~8 KB of
      // connection state per line, host and user included. The error is the point.
      serializers: {
        err: (err: Error) => withoutClients(pino.stdSerializers.err(err), 0),
        // Fastify takes this logger's serializers over its own (lib/logger-pino.js).
        req: (req: FastifyRequest) => ({
          method: req.method,
          url: loggedUrl(req.url),
          version: req.headers?.['accept-version'],
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort,
        }),
      },
    },
    // Synchronous writes (pino's default): one write() per line on this thread. The
    // asynchronous mode hands each line to libuv's thread pool and back, which cost ~25 µs
    // of CPU per roster request (155 vs 130 µs; bench/README.md), and a crash or OOM kill
    // could lose the lines still queued.
    destination ?? pino.destination({ sync: true }),
  )
}

/**
 * The serialized error without any `client` key, also in the errors it nests
 * (`aggregateErrors`, an error-valued property, which pino serializes the same way).
 */
function withoutClients(value: unknown, depth: number): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    for (const item of value) withoutClients(item, depth + 1)
    return value
  }
  const record = value as Record<string, unknown>
  delete record.client
  for (const key of Object.keys(record)) withoutClients(record[key], depth + 1)
  return value
}
