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
      serializers: {
        err: (err: Error) => {
          const serialized = pino.stdSerializers.err(err) as Record<string, unknown>
          if (serialized && typeof serialized === 'object') delete serialized.client
          return serialized
        },
      },
    },
    // Synchronous writes (pino's default): one write() per line on this thread. The
    // asynchronous mode hands each line to libuv's thread pool and back, which cost ~25 µs
    // of CPU per roster request (155 vs 130 µs; bench/README.md), and a crash or OOM kill
    // could lose the lines still queued.
    destination ?? pino.destination({ sync: true }),
  )
}
