import type { Socket } from 'node:net'
import type { ClientBase, Pool } from 'pg'

/** What a query gets when its connection stopped answering. */
export class ConnectionStalledError extends Error {
  constructor(ms: number) {
    // isConnectionError() (src/migrate/errors.ts) knows it by "connection stopped answering".
    super(`the database connection stopped answering: nothing received for ${ms} ms`)
    this.name = 'ConnectionStalledError'
  }
}

/** Set on a pool client while a request holds it (or its set-up query runs). */
const BUSY = Symbol('busy')
type GuardedClient = ClientBase & { [BUSY]?: boolean }

/**
 * Gives up a pooled connection that stops passing data while it is in use (a failover,
 * a half-open TCP connection, a frozen relay): after `stallMs` without a byte either
 * way, its socket is destroyed, the query fails with ConnectionStalledError (the routes
 * answer 503) and the pool drops the connection. Without it such connections held
 * every pool slot and requests waited with no end. The server-side `statement_timeout`
 * comes first for a query that is merely slow; this is the client's own backstop.
 *
 * It does what pg's `query_timeout` does, at a fraction of the cost: `query_timeout`
 * creates and clears a timer and closures per query, and under load their garbage was
 * most of the roster route's extra GC (README, "Measured figures"). Here each
 * connection has one socket timeout, set once; Node re-arms it on every read and write
 * without allocating, and "in use" is a flag on the client, not a collection.
 *
 * "In use" is checkout to release. So a client must never be held quiet longer than
 * `stallMs` by the application (app-side work inside a transaction, LISTEN, a paused
 * stream): the guard cannot tell that from a frozen server, and gives it up. The
 * service only uses `pool.query` (one statement per checkout).
 */
export class StallGuard {
  constructor(private readonly stallMs: number) {}

  /**
   * For the pool's `onConnect` hook: arms the guard on a new connection, and keeps it
   * in use while `setUp` (its first query) runs; pg-pool's own connection timeout has
   * ended by then, and the pool's `acquire` comes only after.
   */
  async arm<T>(client: ClientBase, setUp: () => Promise<T>): Promise<T> {
    const guarded = client as GuardedClient
    // Typed by @types/pg (`Connection.stream`); after a TLS upgrade it is the TLS socket,
    // whose reads and writes re-arm the timeout the same way.
    const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream
    guarded[BUSY] = true
    // A listener of its own, not setTimeout's callback: that one is a `once`, gone after
    // the first timeout, which a connection idle in the pool reaches.
    socket.setTimeout(this.stallMs)
    socket.on('timeout', () => {
      if (guarded[BUSY] === true) socket.destroy(new ConnectionStalledError(this.stallMs))
    })
    // The destroyed socket's error reaches the query, whose caller reports it (a request's
    // 503 is logged by the error handler); the client then emits it too, and an 'error'
    // with no listener would end the process. pg-pool listens only while the client is
    // idle and during this set-up (its listener then emits the pool's own 'error', which
    // the pool's owner must listen to, as for any connection lost while idle).
    client.on('error', () => {})
    try {
      return await setUp()
    } finally {
      guarded[BUSY] = false
    }
  }

  /** Follows the pool's checkouts: in use from `acquire` to `release`. */
  track(pool: Pool): void {
    pool.on('acquire', (client) => {
      ;(client as GuardedClient)[BUSY] = true
    })
    pool.on('release', (_err, client) => {
      ;(client as GuardedClient)[BUSY] = false
    })
  }
}
