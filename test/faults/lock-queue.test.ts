import { rm } from 'node:fs/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Migrator } from '../../src/migrate/migrator.js'
import { ADMIN_TOKEN, AUTH } from '../helpers/app.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { builtInChainPlus, getJson, sleep } from '../helpers/faults.js'
import { withClient } from '../helpers/postgres.js'
import { type ServiceProcess, startService } from '../helpers/process.js'

/**
 * The lock queue: `ALTER TABLE players ADD COLUMN` needs ACCESS EXCLUSIVE, so
 * it waits behind any transaction that touched players, and every later read
 * of players queues behind the ALTER. Without lock_timeout one forgotten
 * transaction takes the whole players table down; with it, the migration gives
 * up after MIGRATION_LOCK_TIMEOUT_MS, lets the queue drain, and tries again.
 */
const LOCK_TIMEOUT_MS = 1000
const BLOCK_MS = 15_000
const BLOCKER_APP = 'fault-test-blocker'
const MIGRATION = '024_players_nickname'

interface Read {
  at: number
  ms: number
  error?: string
}

describe('a transaction holding a lock on players while the service adds a column to it', () => {
  let db: TestDatabase
  let service: ServiceProcess | undefined
  let blocker: pg.Client | undefined
  let reader: pg.Client | undefined
  let dir: string | undefined

  beforeAll(async () => {
    db = await createTestDatabase('incident')
    // The database as the current release left it: 001-023 applied.
    await new Migrator({ connectionString: db.url }).up()
  })
  afterAll(async () => {
    await service?.stop('SIGKILL')
    await blocker?.end().catch(() => {})
    await reader?.end().catch(() => {})
    await db?.drop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('keeps reads of players answering within about lock_timeout, retries, names the blocker, and becomes ready after it ends', async () => {
    dir = await builtInChainPlus({
      [MIGRATION]: "await context.ensureColumn('players', 'nickname', 'text')",
    })

    blocker = new pg.Client({ connectionString: db.url, application_name: BLOCKER_APP })
    await blocker.connect()
    const blockerPid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))
      .rows[0]?.pid
    await blocker.query('BEGIN')
    await blocker.query('SELECT id FROM players WHERE id = 1 FOR UPDATE')
    const blockedAt = performance.now()

    // Another session reads players in a loop the whole time and times each read.
    reader = new pg.Client({
      connectionString: db.url,
      application_name: 'fault-test-reader',
      statement_timeout: 20_000,
    })
    await reader.connect()
    const reads: Read[] = []
    let reading = true
    const readLoop = (async () => {
      while (reading) {
        const started = performance.now()
        try {
          await reader?.query('SELECT id, first_name, last_name FROM players WHERE team_id = 2')
          reads.push({ at: started, ms: performance.now() - started })
        } catch (err) {
          reads.push({ at: started, ms: performance.now() - started, error: String(err) })
        }
        await sleep(25)
      }
    })()

    service = await startService({
      DATABASE_URL: db.url,
      ADMIN_TOKEN,
      MIGRATIONS_DIR: dir,
      MIGRATION_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_MS),
    })

    // /migrations names the blocking session: pid, application_name, and for how long.
    const during = await service.waitFor(
      '/migrations',
      (s, b) =>
        s === 200 &&
        b.blockedBy.some((x: { pid: number }) => x.pid === blockerPid) &&
        b.blockedBy[0].transactionSeconds >= 2,
      BLOCK_MS,
      AUTH,
    )
    console.log('/migrations during the blockage:', JSON.stringify(during.blockedBy))
    expect(during).toMatchObject({ state: 'running', current: MIGRATION, pending: 1 })
    expect(during.blockedBy).toEqual([
      {
        pid: blockerPid,
        application: BLOCKER_APP,
        state: 'idle in transaction',
        transactionSeconds: expect.any(Number),
      },
    ])
    expect(during.migrations.find((m: { name: string }) => m.name === MIGRATION).status).toBe(
      'running',
    )
    const ready = await getJson(`${service.base}/health/ready`)
    expect(ready.body).toEqual({ status: 'fail', reason: 'migrating' })
    expect((await fetch(`${service.base}/health/live`)).status).toBe(200)

    // Hold the lock for BLOCK_MS in all, then end the blocking transaction.
    await sleep(Math.max(0, BLOCK_MS - (performance.now() - blockedAt)))
    const retriesBeforeCommit = service.logs.filter(
      (l) => l.msg === 'migration hit lock_timeout; retrying',
    ).length
    await blocker.query('COMMIT')
    const committedAt = performance.now()
    await service.waitFor('/health/ready', (s) => s === 200, 30_000)
    const readyAfterMs = performance.now() - committedAt
    reading = false
    await readLoop

    // Reads kept answering: none failed, none waited much longer than lock_timeout.
    const duringBlock = reads.filter((r) => r.at >= blockedAt && r.at <= committedAt)
    const slowest = Math.max(...duringBlock.map((r) => r.ms))
    const queued = duringBlock.filter((r) => r.ms > 100)
    const retries = service.logs.filter((l) => l.msg === 'migration hit lock_timeout; retrying')
    console.log(
      `lock queue: ${duringBlock.length} reads of players during ${Math.round(committedAt - blockedAt)} ms of blockage,` +
        ` slowest ${Math.round(slowest)} ms (lock_timeout ${LOCK_TIMEOUT_MS} ms), ${queued.length} waited > 100 ms;` +
        ` ${retriesBeforeCommit} lock_timeout retries before the commit, ${retries.length} in all;` +
        ` ready ${Math.round(readyAfterMs)} ms after the blocker committed`,
    )
    expect(reads.filter((r) => r.error)).toEqual([])
    expect(duringBlock.length).toBeGreaterThan(50)
    expect(slowest).toBeLessThan(LOCK_TIMEOUT_MS + 1500)
    // The queue was real: some reads did wait behind the ALTER.
    expect(queued.length).toBeGreaterThan(0)

    // The log says it retried, and names the blocker with pid, application and age.
    expect(retriesBeforeCommit).toBeGreaterThanOrEqual(3)
    for (const line of retries) {
      expect(line).toMatchObject({ migration: MIGRATION, level: 40 })
    }
    expect(
      retries.some((l) =>
        (l.blockedBy as Array<{ pid: number; application: string }>).some(
          (b) => b.pid === blockerPid && b.application === BLOCKER_APP,
        ),
      ),
    ).toBe(true)
    const waiting = service.logs.find(
      (l) => l.msg === 'migration is waiting for a lock held by another session',
    )
    expect(waiting).toMatchObject({
      migration: MIGRATION,
      blockedBy: [
        { pid: blockerPid, application: BLOCKER_APP, transactionSeconds: expect.any(Number) },
      ],
    })

    // Ready within the retry backoff (at most 5 s) plus one lock_timeout, with margin.
    expect(readyAfterMs).toBeLessThan(5000 + LOCK_TIMEOUT_MS + 3000)
    const after = await getJson(`${service.base}/migrations`, AUTH)
    expect(after.body).toMatchObject({
      state: 'complete',
      applied: 24,
      pending: 0,
      current: null,
      blockedBy: [],
    })
    const column = await withClient(db.url, (c) =>
      c.query(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'players' AND column_name = 'nickname'",
      ),
    )
    expect(column.rowCount).toBe(1)

    const exit = await service.stop('SIGTERM')
    expect(exit).toEqual({ code: 0, signal: null })
  })
})
