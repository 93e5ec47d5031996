import type { Client } from 'pg'

/**
 * Whether `work` succeeded within `timeoutMs`: false when it failed or is still going at
 * the deadline (it is not cancelled; the caller ends what it started).
 */
export async function succeedsWithin(work: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => false,
      ),
      deadline,
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Ends a pg client, giving up on the server's goodbye after `timeoutMs`: `end()` sends
 * Terminate and waits for the server to close the socket, which a server that stopped
 * answering (a failover, a host gone, SIGSTOP) never does, so a stop waited for it until
 * it was killed. The socket is then destroyed, which `end()` takes as its end.
 */
export async function endClient(client: Client, timeoutMs = 1000): Promise<void> {
  const ended = client.end().catch(() => {})
  if (await succeedsWithin(ended, timeoutMs)) return
  ;(
    client as unknown as { connection?: { stream?: { destroy(): void } } }
  ).connection?.stream?.destroy()
  await ended
}
