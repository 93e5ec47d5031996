import type { ClientBase } from 'pg'
import type { LockHolder } from './types.js'

/** Two int4 keys ('bask', 'migr'): the advisory lock that serialises migration runs per database. */
const CLASS_ID = 0x6261736b
const OBJ_ID = 0x6d696772

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })

export { sleep }

/**
 * Takes the migration lock by polling `pg_try_advisory_lock` on a session of its
 * own. A blocking `pg_advisory_lock` would hold a snapshot while it waits, and a
 * `CREATE INDEX CONCURRENTLY` in the holder waits for that snapshot forever. A
 * session lock dies with its connection, so a killed process never leaves it stale.
 */
export async function acquireMigrationLock(
  client: ClientBase,
  options: { signal?: AbortSignal; onWait?: (holder: LockHolder | null) => void } = {},
): Promise<boolean> {
  let delay = 50
  for (;;) {
    if (options.signal?.aborted) return false
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1, $2) AS locked',
      [CLASS_ID, OBJ_ID],
    )
    if (rows[0]?.locked) return true
    options.onWait?.(await lockHolder(client))
    await sleep(delay, options.signal)
    // A try is one cheap round trip; a short cap lets waiting replicas follow the holder quickly.
    delay = Math.min(delay * 2, 200)
  }
}

export async function releaseMigrationLock(client: ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1, $2)', [CLASS_ID, OBJ_ID])
}

/** Who holds the migration lock now, if anyone. */
export async function lockHolder(client: Pick<ClientBase, 'query'>): Promise<LockHolder | null> {
  const { rows } = await client.query<{
    pid: number
    application: string
    client_addr: string | null
    session_seconds: number | null
  }>(
    `SELECT a.pid, a.application_name AS application, host(a.client_addr) AS client_addr,
            extract(epoch FROM now() - a.backend_start)::float8 AS session_seconds
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
              SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2`,
    [CLASS_ID, OBJ_ID],
  )
  const row = rows[0]
  if (!row) return null
  return {
    pid: row.pid,
    application: row.application,
    clientAddr: row.client_addr,
    sessionSeconds: row.session_seconds === null ? null : Math.round(row.session_seconds * 10) / 10,
  }
}
