import pino from 'pino'

/**
 * The service's logger: JSON lines on stdout (or `destination`), at `level`.
 *
 * No `redact`: pino redacts a key's value after that key's serializer, and Fastify's
 * `req` serializer writes method, url, host and peer, never headers, so a path such as
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
      serializers: { err: (err: Error) => withoutClients(pino.stdSerializers.err(err), 0) },
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
