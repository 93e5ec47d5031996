import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * What Node's http server keeps on a socket: the response in progress (`_httpMessage`,
 * set once a request's headers are in, cleared when its response is done), and the
 * parser with the request it last read (`parser.incoming`). Node's own
 * `closeIdleConnections()` reads the same fields.
 */
type HttpSocket = Socket & {
  _httpMessage?: ServerResponse | null
  parser?: { incoming?: { complete: boolean } | null } | null
}

/**
 * How long a connection must stay silent, from the first drain pass that found it so,
 * before it is closed. A client that connected just before the signal may have its
 * request on the wire, or be about to send it; measured: a request sent 20 ms after the
 * signal on a connection opened before it was reset without this.
 */
export const SILENT_GRACE_MS = 250

/**
 * The HTTP server's sockets, so that a graceful stop does not wait on connections that
 * will never finish by themselves. `server.close()` closes idle keep-alive connections
 * once, but not a connection that never sent a byte (Node times it out only after
 * `headersTimeout`), nor one whose answer went out while its request body still trickles
 * in: either held a stop for its whole budget and made it exit 1. Tracked per
 * connection, not per request: a keep-alive client costs nothing per request.
 */
export function trackConnections(server: Server) {
  const sockets = new Set<HttpSocket>()
  const silentSince = new WeakMap<HttpSocket, number>()
  let draining = false
  server.on('connection', (socket: HttpSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return {
    /**
     * Resolves once every response in progress now has been sent (or its connection has
     * closed). Responses begun later are not waited for.
     */
    answered(): Promise<void> {
      const pending: Array<Promise<void>> = []
      for (const socket of sockets) {
        const response = socket._httpMessage
        if (!response || response.writableFinished || response.destroyed) continue
        pending.push(
          new Promise((resolve) => {
            response.once('finish', resolve).once('close', resolve)
          }),
        )
      }
      return Promise.all(pending).then(() => {})
    },

    /**
     * One pass while draining. Idle keep-alive connections are closed, as
     * `server.close()` does once (not while any answer is still being sent). A response
     * in progress is left alone, and told to close its connection after it
     * (`Connection: close`, while its headers are unsent), so that its client sends
     * nothing more there. A socket whose request body is still
     * arriving after its response went out is destroyed; so is one that has not sent a
     * byte for `SILENT_GRACE_MS` since a pass first found it silent. A request whose
     * headers are still arriving is left to finish (Node answers it, with
     * `Connection: close`, after `server.close()`). From the first pass on, every new
     * response says `Connection: close` too. Returns how many were, or are about to be,
     * destroyed.
     */
    drainPass(now = performance.now()): number {
      if (!draining) {
        draining = true
        // Ahead of Fastify's own listener, which may answer at once (a 503 from the gate).
        server.prependListener('request', (_request, response: ServerResponse) => {
          response.setHeader('Connection', 'close')
        })
      }
      // Keep-alive connections between requests (Node's own test of idle: no request
      // being read, no response in progress), also those whose response ended after close.
      // Not while an ended response is still being sent: Node counts its connection idle
      // (it reads `finished`, not `writableFinished`) and cut a slow reader's answer short.
      let flushing = false
      for (const socket of sockets) {
        const response = socket._httpMessage
        if (response?.writableEnded && !response.writableFinished) {
          flushing = true
          break
        }
      }
      if (!flushing) server.closeIdleConnections()
      let destroyed = 0
      const silent: HttpSocket[] = []
      for (const socket of sockets) {
        const response = socket._httpMessage
        if (response && !response.writableFinished) {
          if (!response.headersSent) response.setHeader('Connection', 'close')
          continue
        }
        const incoming = socket.parser?.incoming
        const trickling = incoming != null && !incoming.complete
        if (trickling) {
          socket.destroy()
          destroyed++
        } else if (socket.bytesRead === 0) {
          const since = silentSince.get(socket)
          if (since === undefined) silentSince.set(socket, now)
          else if (now - since >= SILENT_GRACE_MS) silent.push(socket)
        }
      }
      // Decided after the event loop has polled once more and read what has arrived: after
      // a stall of the process (CPU throttling), a request already in the socket's buffer
      // would look silent. Two hops: an immediate queued during a poll runs before the next.
      if (silent.length > 0) {
        setImmediate(() =>
          setImmediate(() => {
            for (const socket of silent) if (socket.bytesRead === 0) socket.destroy()
          }),
        )
      }
      return destroyed + silent.length
    },
  }
}
