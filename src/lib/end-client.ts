import type { Client } from 'pg'

/**
 * Ends a pg client, giving up on the server's goodbye after `timeoutMs`: `end()` sends
 * Terminate and waits for the server to close the socket, which a server that stopped
 * answering (a failover, a host gone, SIGSTOP) never does, so a stop waited for it until
 * it was killed. The socket is then destroyed, which `end()` takes as its end.
 */
export async function endClient(client: Client, timeoutMs = 1000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const ended = client.end().then(
    () => true,
    () => true,
  )
  const gaveUp = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  try {
    if (await Promise.race([ended, gaveUp])) return
    ;(
      client as unknown as { connection?: { stream?: { destroy(): void } } }
    ).connection?.stream?.destroy()
    await ended
  } finally {
    clearTimeout(timer)
  }
}
