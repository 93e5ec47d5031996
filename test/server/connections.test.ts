import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SILENT_GRACE_MS, trackConnections } from '../../src/lib/connections.js'

// The drain passes of a graceful stop, on a real HTTP server and real sockets.
describe('trackConnections().drainPass', () => {
  let server: Server | undefined
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  })

  async function setup() {
    server = createServer((_req, res) => res.end('ok'))
    const connections = trackConnections(server)
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const accepted = new Promise((resolve) => server?.once('connection', resolve))
    const client = connect(port, '127.0.0.1')
    sockets.push(client)
    let answer = ''
    let closed = false
    client.setEncoding('utf8').on('data', (d: string) => {
      answer += d
    })
    client.on('error', () => {})
    client.on('close', () => {
      closed = true
    })
    await accepted
    return { connections, client, answer: () => answer, closed: () => closed }
  }

  const settle = () => new Promise((resolve) => setTimeout(resolve, 100))

  it('closes a connection that stays silent for the grace period', async () => {
    const { connections, closed } = await setup()
    const t0 = performance.now()
    connections.drainPass(t0)
    await settle()
    expect(closed()).toBe(false)
    // One more millisecond: (t0 + 250) - t0 is 249.99… for some t0 in floating point.
    connections.drainPass(t0 + SILENT_GRACE_MS + 1)
    await settle()
    expect(closed()).toBe(true)
  })

  it('answers a request that arrived before the pass but was not read yet (a stalled process)', async () => {
    const { connections, client, answer } = await setup()
    const t0 = performance.now()
    connections.drainPass(t0)
    // The bytes reach the server's socket buffer now; the server reads them only in the
    // event loop's next poll, after this synchronous pass that already sees the grace over.
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    connections.drainPass(t0 + SILENT_GRACE_MS + 1000)
    await settle()
    expect(answer()).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(answer().toLowerCase()).toContain('connection: close')
  })
})
