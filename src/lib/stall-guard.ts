import type { Socket } from 'node:net'
import type { Pool, PoolClient } from 'pg'

/** What a query gets when its connection stopped answering. */
export class ConnectionStalledError extends Error {
  constructor(ms: number) {
    // isConnectionError() (src/migrate/errors.ts) knows it by "connection stopped answering".
    super(`the database connection stopped answering: nothing received for ${ms} ms`)
    this.name = 'ConnectionStalledError'
  }
}

/**
 * Gives up a pooled connection that stops passing data while a query is out on it (a
 * failover, a half-open TCP connection, a frozen relay): after `stallMs` without a byte
 * either way, its socket is destroyed, the query fails with ConnectionStalledError (the
 * routes answer 503) and the pool drops the connection. Without it such connections held
 * every pool slot and requests waited with no end. The server-side `statement_timeout`
 * comes first for a query that is merely slow; this is the client's own backstop.
 *
 * It does what pg's `query_timeout` does, for the way the service uses the pool (one
 * statement per checkout, `pool.query`), at a fraction of the cost: `query_timeout`
 * creates and clears a timer and two closures per query, and under load their garbage
 * was most of the roster route's extra GC (README, "Measured figures"). Here each
 * connection has one socket timeout, set once; Node re-arms it on every read and write
 * without allocating. A connection idle in the pool also times out, and is left alone:
 * only a checked-out one (between the pool's `acquire` and `release`) is given up.
 */
export function guardStalledConnections(pool: Pool, stallMs: number): void {
  const checkedOut = new WeakSet<PoolClient>()
  pool.on('acquire', (client) => checkedOut.add(client))
  pool.on('release', (_err, client) => checkedOut.delete(client))
  pool.on('connect', (client) => {
    // Typed by @types/pg (`Connection.stream`); after a TLS upgrade it is the TLS socket,
    // whose reads and writes re-arm the timeout the same way.
    const socket = client.connection.stream as Socket
    if (typeof socket.setTimeout !== 'function') return
    socket.setTimeout(stallMs, () => {
      if (checkedOut.has(client)) socket.destroy(new ConnectionStalledError(stallMs))
    })
    // The destroyed socket's error reaches the query; the client then emits it too, and
    // an 'error' with no listener would end the process. The pool's own listener is
    // there only while the client is idle.
    client.on('error', () => {})
  })
}
