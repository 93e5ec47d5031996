import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { acquireMigrationLock, releaseMigrationLock } from '../../src/migrate/lock.js'
import { Migrator, type MigratorLogger } from '../../src/migrate/migrator.js'
import { MigrationSupervisor } from '../../src/migrate/supervisor.js'
import { writeChain } from '../helpers/chains.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

// The engine's lock keys ('bask', 'migr'): a session here plays a replica that holds the lock.
const LOCK = 'SELECT pg_advisory_lock(1650553707, 1835624306)'

const databases: TestDatabase[] = []
const clients: pg.Client[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end()))
  await Promise.all(databases.splice(0).map((d) => d.drop()))
})

async function holder(url: string) {
  const client = new pg.Client({ connectionString: url, application_name: 'other-replica' })
  await client.connect()
  clients.push(client)
  await client.query(LOCK)
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
  return { client, pid }
}

/** A fresh database and `count` connected sessions on it, all closed after the test. */
async function sessions(count: number) {
  const db = await createTestDatabase('empty')
  databases.push(db)
  const opened = Array.from({ length: count }, () => new pg.Client(db.url))
  clients.push(...opened)
  await Promise.all(opened.map((c) => c.connect()))
  return opened
}

/** A logger that keeps each line's message, for the supervisor's own words. */
function recordingLogger() {
  const lines: Array<string | undefined> = []
  const record = (_obj: object, msg?: string) => lines.push(msg)
  const logger: MigratorLogger = { info: record, warn: record, error: record, debug: () => {} }
  return { lines, logger }
}

describe('the migration lock', () => {
  it('a replica that finds work waits, says who holds the lock, then applies the chain', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const other = await holder(db.url)
    const migrator = new Migrator({ connectionString: db.url })
    const run = migrator.up()
    await expect.poll(() => migrator.view().state, { timeout: 10_000 }).toBe('waiting-for-lock')
    expect(migrator.view().lockHolder).toMatchObject({
      pid: other.pid,
      application: 'other-replica',
    })

    await other.client.query('SELECT pg_advisory_unlock_all()')
    expect(await run).toHaveLength(23)
    expect(migrator.view()).toMatchObject({ state: 'complete', lockHolder: null })
  })

  it('a run whose lock holder is killed stops there: nothing of it goes on beside the next holder', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const dir = await writeChain({
      '001_table': "await context.query('CREATE TABLE t (id int PRIMARY KEY)')",
      '002_insert': "await context.query('INSERT INTO t VALUES (2)')",
    })
    const options = { connectionString: db.url, migrationsDir: dir, lockTimeoutMs: 60_000 }
    await new Migrator({ ...options, applicationName: 'first' }).up({ to: '001_table' })
    // A session holds the table: the run's 002 waits on it, holding the migration lock.
    const table = new pg.Client(db.url)
    clients.push(table)
    await table.connect()
    await table.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE')
    const a = new Migrator({ ...options, applicationName: 'a' })
    const runA = a.up()
    runA.catch(() => {})
    const waitingOnTable = (app: string) =>
      withClient(db.url, async (c) => {
        const { rows } = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE application_name LIKE $1 AND wait_event_type = 'Lock'`,
          [`${app}:%`],
        )
        return rows[0]?.n
      })
    await expect.poll(() => waitingOnTable('a'), { timeout: 10_000 }).toBe(1)

    // An operator (or a lost connection) ends the session that holds the migration lock.
    await withClient(db.url, (c) =>
      c.query(`SELECT pg_terminate_backend(pid) FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND objid = 1835624306`),
    )
    // The run ends with it: its INSERT no longer waits to commit beside the next holder's.
    await expect(runA).rejects.toThrow()
    expect(a.view().state).toBe('failed')
    await expect.poll(() => waitingOnTable('a'), { timeout: 5000 }).toBe(0)

    const b = new Migrator({ ...options, applicationName: 'b' })
    const runB = b.up()
    await expect.poll(() => waitingOnTable('b'), { timeout: 10_000 }).toBe(1)
    await table.query('ROLLBACK')
    expect(await runB).toEqual(['002_insert'])
    await withClient(db.url, async (c) => {
      expect((await c.query('SELECT id FROM t')).rows).toEqual([{ id: 2 }])
      const ledger = await c.query("SELECT name FROM schema_migrations WHERE name = '002_insert'")
      expect(ledger.rows).toHaveLength(1)
    })
  })

  it('a run whose own session is ended while the database is up: that migration failed, not an outage; retried soon', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const dir = await writeChain({
      '001_table': "await context.query('CREATE TABLE t (id int PRIMARY KEY)')",
      '002_insert': "await context.query('INSERT INTO t VALUES (2)')",
    })
    const options = { connectionString: db.url, migrationsDir: dir, lockTimeoutMs: 60_000 }
    await new Migrator(options).up({ to: '001_table' })
    const table = new pg.Client(db.url)
    clients.push(table)
    await table.connect()
    await table.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE')
    const { lines, logger } = recordingLogger()
    const migrator = new Migrator({ ...options, applicationName: 'killed', logger })
    const supervisor = new MigrationSupervisor(migrator, {
      migrateOnBoot: true,
      logger,
      retryMs: 1500,
      failedRetryMs: 60_000,
    })
    const settled = supervisor.start()
    try {
      // 002 waits on the table, and the run names the blocker.
      await expect
        .poll(() => migrator.view().blockedBy.length, { timeout: 10_000 })
        .toBeGreaterThan(0)
      expect(migrator.view()).toMatchObject({ state: 'running', current: '002_insert' })

      await withClient(db.url, (c) =>
        c.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'killed:migration'",
        ),
      )
      await expect.poll(() => supervisor.status().lastError, { timeout: 5000 }).not.toBeNull()
      // The failed attempt names its migration and PostgreSQL's code; the database answers,
      // so readiness says the migration failed, not that the database is unavailable, and
      // nothing is shown blocking a run that no longer runs.
      expect(supervisor.blocker()).toBe('migration-failed')
      expect(supervisor.status().lastError).toMatchObject({
        migration: '002_insert',
        code: '57P01',
      })
      expect(migrator.view()).toMatchObject({ state: 'failed', blockedBy: [] })
      // Retried after the short (outage) delay, not the failed-migration one (60 s).
      const retryInMs = Date.parse(supervisor.status().nextAttemptAt ?? '') - Date.now()
      expect(retryInMs).toBeLessThanOrEqual(1500)
      expect(lines).toContain("the migration's session was lost; will retry")

      // The retry waits on the table again, and applies 002 once it is free.
      await expect
        .poll(() => migrator.view().blockedBy.length, { timeout: 10_000 })
        .toBeGreaterThan(0)
      await table.query('ROLLBACK')
      await settled
      expect(supervisor.complete).toBe(true)
      expect(supervisor.status().lastError).toBeNull()
      await withClient(db.url, async (c) => {
        expect((await c.query('SELECT id FROM t')).rows).toEqual([{ id: 2 }])
      })
    } finally {
      await supervisor.stop()
    }
  })

  it("a migration's own statement failing with a connection-class code is that migration's defect", async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    // 3D000 (invalid_catalog_name) is also what a database that is not there yet says.
    const dir = await writeChain({
      '001_typo': 'await context.query("ALTER DATABASE no_such_database_x SET work_mem = \'1MB\'")',
    })
    const { lines, logger } = recordingLogger()
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir, logger })
    const supervisor = new MigrationSupervisor(migrator, {
      migrateOnBoot: true,
      logger,
      retryMs: 60_000,
      failedRetryMs: 30_000,
    })
    void supervisor.start()
    try {
      await expect.poll(() => supervisor.status().lastError, { timeout: 10_000 }).not.toBeNull()
      expect(supervisor.blocker()).toBe('migration-failed')
      expect(supervisor.status().lastError).toMatchObject({ migration: '001_typo', code: '3D000' })
      expect(migrator.view().sessionLost).toBe(false)
      expect(lines).toContain('migration failed; will retry')
      // The defect's cadence (30 s here), not the outage's (60 s here).
      const retryInMs = Date.parse(supervisor.status().nextAttemptAt ?? '') - Date.now()
      expect(retryInMs).toBeGreaterThan(20_000)
      expect(retryInMs).toBeLessThanOrEqual(30_000)
    } finally {
      await supervisor.stop()
    }
  })

  it('an up-to-date boot neither takes nor waits for the lock', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    await new Migrator({ connectionString: db.url }).up()
    await holder(db.url) // a stuck holder: a boot that needs nothing must not wait on it
    const migrator = new Migrator({ connectionString: db.url })
    expect(await migrator.up()).toEqual([])
    expect(migrator.view().state).toBe('complete')
  })
})

describe('waiting for the lock', () => {
  it('follows a release at once when it is notified, not at the next poll', async () => {
    const [holding, waiting] = (await sessions(2)) as [pg.Client, pg.Client]
    expect(await acquireMigrationLock(holding)).toBe('acquired')

    let waits = 0
    const acquired = acquireMigrationLock(waiting, {
      // Polls a minute apart: only the notification can make it try again within the test.
      minPollMs: 60_000,
      maxPollMs: 60_000,
      onWait: () => {
        waits++
      },
    })
    await expect.poll(() => waits, { timeout: 10_000 }).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 100)) // the waiter now sleeps on its long poll

    const released = performance.now()
    await releaseMigrationLock(holding)
    expect(await acquired).toBe('acquired')
    expect(performance.now() - released).toBeLessThan(10_000)
    expect(waits).toBe(1)
    // And it is really held: the first session cannot take it back.
    expect(
      (await holding.query('SELECT pg_try_advisory_lock(1650553707, 1835624306) AS ok')).rows[0]
        ?.ok,
    ).toBe(false)
  })
})

describe('waiters that no longer need the lock', () => {
  it('stop waiting after a notified release when the caller says the work is done', async () => {
    const [holding, next, waiting] = (await sessions(3)) as [pg.Client, pg.Client, pg.Client]
    expect(await acquireMigrationLock(holding)).toBe('acquired')

    let asked = 0
    let waits = 0
    const outcome = acquireMigrationLock(waiting, {
      minPollMs: 60_000,
      maxPollMs: 60_000,
      onWait: () => {
        waits++
      },
      stillNeeded: async () => {
        asked++
        return false
      },
    })
    await expect.poll(() => waits, { timeout: 10_000 }).toBe(1)
    expect(asked).toBe(0) // not asked while nothing was released

    // Another session queues for the lock inside PostgreSQL and gets it at the release,
    // so the notified waiter's next try fails and it is asked whether it still needs it.
    const queued = next.query(LOCK)
    await expect
      .poll(async () => {
        const { rows } = await holding.query(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        return rows[0]?.n
      })
      .toBe(1)
    await releaseMigrationLock(holding)
    await queued
    expect(await outcome).toBe('not-needed')
    expect(asked).toBe(1)
  })
})

describe('sessions', () => {
  /** Sessions of migrators named `app` still open on the database (a backend ends just after its client). */
  const openSessions = (url: string, app: string) =>
    expect.poll(
      () =>
        withClient(url, async (c) => {
          const { rows } = await c.query<{ n: string }>(
            'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
            [`${app}:%`],
          )
          return Number(rows[0]?.n)
        }),
      { timeout: 5000 },
    )

  it('every path through up() closes every session it opened', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const run = (app: string, to?: string) =>
      new Migrator({ connectionString: db.url, applicationName: app }).up(to ? { to } : {})

    // A partial run, then `to` already applied, then the rest, then nothing pending.
    expect(await run('partial', '005_guardians')).toHaveLength(5)
    expect(await run('to-applied', '003_team_head_coach')).toEqual([])
    expect(await run('rest')).toHaveLength(18)
    expect(await run('up-to-date')).toEqual([])
    for (const app of ['partial', 'to-applied', 'rest', 'up-to-date']) {
      await openSessions(db.url, app).toBe(0)
    }

    // Waiting for the lock, then released by a notified release with nothing left to do.
    await withClient(db.url, (c) =>
      c.query("DELETE FROM schema_migrations WHERE name = '023_jersey_backfill'"),
    )
    const other = await holder(db.url)
    const waiter = new Migrator({ connectionString: db.url, applicationName: 'waiter' })
    const waiting = waiter.up()
    await expect.poll(() => waiter.view().state, { timeout: 10_000 }).toBe('waiting-for-lock')
    await openSessions(db.url, 'waiter').toBe(2)
    await other.client.query(
      `INSERT INTO schema_migrations (name, checksum, outcome, duration_ms) VALUES ('023_jersey_backfill', 'x', 'ran', 0)`,
    )
    await other.client.query(
      'SELECT pg_advisory_unlock_all(); NOTIFY basketball_api_migration_lock_released',
    )
    expect(await waiting).toEqual([])
    await openSessions(db.url, 'waiter').toBe(0)

    // Stopped while waiting for the lock.
    await withClient(db.url, (c) =>
      c.query("DELETE FROM schema_migrations WHERE name = '023_jersey_backfill'"),
    )
    await other.client.query(LOCK)
    const stopped = new Migrator({ connectionString: db.url, applicationName: 'stopped' })
    const stopping = stopped.up()
    await expect.poll(() => stopped.view().state, { timeout: 10_000 }).toBe('waiting-for-lock')
    await stopped.stop()
    await expect(stopping).rejects.toThrow(/stopped while waiting/)
    await openSessions(db.url, 'stopped').toBe(0)
  })
})
