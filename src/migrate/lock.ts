import type { ClientBase, Notification } from 'pg'
import type { LockHolder } from './types.js'

/** Two int4 keys ('bask', 'migr'): the advisory lock that serialises migration runs per database. */
const CLASS_ID = 0x6261736b
const OBJ_ID = 0x6d696772
/** Notified by a holder as it releases the lock, so waiting replicas try again at once. */
const RELEASED = 'basketball_api_migration_lock_released'

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
 * Takes the migration lock by polling `pg_try_advisory_lock` on `client`, the session
 * that will then apply the migrations (src/migrate/migrator.ts says why). A blocking
 * `pg_advisory_lock` would hold a snapshot while it waits, and a `CREATE INDEX
 * CONCURRENTLY` in the holder waits for that snapshot forever. A session lock dies with
 * its connection, so a killed process never leaves it stale. While waiting, the
 * session LISTENs for the holder's release: the next try follows it at once instead of
 * at the next poll (polling stays, for a holder that died).
 */
export async function acquireMigrationLock(
  client: ClientBase,
  options: {
    signal?: AbortSignal
    onWait?: (holder: LockHolder | null) => void
    /** The wait between two tries when no release is notified: 50 ms, doubling up to 200 ms. */
    minPollMs?: number
    maxPollMs?: number
    /**
     * Asked after a notified release when the lock went to another session: false stops
     * waiting (`'not-needed'`), e.g. because the chain the caller wanted to apply is now
     * in the ledger. Waiting replicas then finish together instead of one lock at a time.
     */
    stillNeeded?: () => Promise<boolean>
  } = {},
): Promise<'acquired' | 'stopped' | 'not-needed'> {
  const maxPollMs = options.maxPollMs ?? 200
  let delay = Math.min(options.minPollMs ?? 50, maxPollMs)
  let listening = false
  // Set by a release notified at any time, also while a query is in flight, so that
  // the next sleep is skipped rather than a release missed.
  const released = { flag: false, wake: () => {} }
  const onNotification = (message: Notification) => {
    if (message.channel !== RELEASED) return
    released.flag = true
    released.wake()
  }
  try {
    for (;;) {
      if (options.signal?.aborted) return 'stopped'
      const afterRelease = released.flag
      released.flag = false
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1, $2) AS locked',
        [CLASS_ID, OBJ_ID],
      )
      if (rows[0]?.locked) return 'acquired'
      if (afterRelease && options.stillNeeded && !(await options.stillNeeded())) {
        return 'not-needed'
      }
      if (!listening) {
        // Listen, then try again: a release between the try above and the LISTEN would
        // otherwise go unnoticed until the next poll.
        client.on('notification', onNotification)
        await client.query(`LISTEN ${RELEASED}`)
        listening = true
        continue
      }
      options.onWait?.(await lockHolder(client))
      if (!released.flag) await sleepUntil(released, delay, options.signal)
      // A try is one cheap round trip; a short cap bounds the wait when no release is notified.
      delay = Math.min(delay * 2, maxPollMs)
    }
  } finally {
    client.off('notification', onNotification)
    // The session goes on to apply migrations: it no longer needs to hear of releases.
    if (listening) await client.query(`UNLISTEN ${RELEASED}`).catch(() => {})
  }
}

/** Releases the lock and tells the waiting sessions (one round trip). */
export async function releaseMigrationLock(client: ClientBase): Promise<void> {
  // Constants only; NOTIFY is delivered when this implicit transaction ends, after the unlock.
  await client.query(`SELECT pg_advisory_unlock(${CLASS_ID}, ${OBJ_ID}); NOTIFY ${RELEASED}`)
}

function sleepUntil(released: { wake: () => void }, ms: number, signal?: AbortSignal) {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      released.wake = () => {}
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
    released.wake = done
  })
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
