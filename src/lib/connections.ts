import type { Server } from 'node:http'
import type { Socket } from 'node:net'

/** What Node's http server keeps on a socket while a response is in progress. */
type HttpSocket = Socket & { _httpMessage?: { writableFinished: boolean } | null }

/**
 * The HTTP server's sockets, so that a stop can close every one that carries no
 * response in progress. Node's own `closeIdleConnections()` (run once by
 * `server.close()`) leaves a connection that never sent a request, or one whose
 * answer went out while its body still trickles in: either held a graceful stop
 * for its whole budget and made it exit 1. Per connection, not per request: a
 * keep-alive client costs nothing per request.
 */
export function trackConnections(server: Server) {
  const sockets = new Set<HttpSocket>()
  server.on('connection', (socket: HttpSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return {
    /** Destroys the sockets with no response in progress; returns how many. */
    closeIdle(): number {
      let closed = 0
      for (const socket of sockets) {
        const response = socket._httpMessage
        if (response && !response.writableFinished) continue
        socket.destroy()
        closed++
      }
      return closed
    },
  }
}
