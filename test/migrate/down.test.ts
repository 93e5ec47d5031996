import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { RevertRefusedError } from '../../src/migrate/errors.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { writeChain } from '../helpers/chains.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

// The engine's lock keys ('bask', 'migr'): a session here plays a replica of a newer release.
const LOCK = 'SELECT pg_advisory_lock(1650553707, 1835624306)'
const NEWER_ROW = `INSERT INTO schema_migrations (name, checksum, outcome, duration_ms)
                   VALUES ('099_from_a_newer_release', 'sha256:0', 'ran', 1)`

const databases: TestDatabase[] = []
afterEach(async () => {
  await Promise.all(databases.splice(0).map((d) => d.drop()))
})
async function emptyDatabase() {
  const db = await createTestDatabase('empty')
  databases.push(db)
  return db
}
const ledgerNames = (url: string) =>
  withClient(url, async (c) =>
    (await c.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).rows.map(
      (r) => r.name,
    ),
  )

/** Two migrations, each with a down() dropping its table (a body may close `up` and go on). */
const reversibleChain = () =>
  writeChain({
    '001_first': `await context.query('CREATE TABLE IF NOT EXISTS t_first (id int)')
}
export async function down({ context }) {
  await context.query('DROP TABLE t_first')`,
    '002_second': `await context.query('CREATE TABLE IF NOT EXISTS t_second (id int)')
}
export async function down({ context }) {
  await context.query('DROP TABLE t_second')`,
  })

describe('down', () => {
  it('refuses, under the lock, when a newer release applied a migration while it waited', async () => {
    const db = await emptyDatabase()
    const dir = await reversibleChain()
    const options = { connectionString: db.url, migrationsDir: dir }
    await new Migrator(options).up()
    const newer = new pg.Client(db.url)
    await newer.connect()
    try {
      await newer.query(LOCK)
      const migrator = new Migrator(options)
      const reverting = migrator.down()
      reverting.catch(() => {})
      await expect.poll(() => migrator.view().state, { timeout: 10_000 }).toBe('waiting-for-lock')
      // The newer release's run commits its migration, then lets go of the lock.
      await newer.query(NEWER_ROW)
      await newer.query('SELECT pg_advisory_unlock_all()')
      await expect(reverting).rejects.toBeInstanceOf(RevertRefusedError)
      await expect(reverting).rejects.toThrow(
        'refusing to revert: the ledger lists migrations this build does not know (099_from_a_newer_release)',
      )
    } finally {
      await newer.end()
    }
    expect(await ledgerNames(db.url)).toEqual([
      '001_first',
      '002_second',
      '099_from_a_newer_release',
    ])
  })

  it('reverts a migration with transaction = false outside a transaction, as its up ran', async () => {
    const db = await emptyDatabase()
    const dir = await writeChain({
      '001_table': "await context.query('CREATE TABLE t (id int)')",
      '002_index': `await context.ensureIndex('ix_t_id', { table: 't', definition: '(id)', concurrently: true })
}
export const transaction = false
export async function down({ context }) {
  await context.query('DROP INDEX CONCURRENTLY IF EXISTS ix_t_id')`,
    })
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    await migrator.up()
    expect(await migrator.down()).toBe('002_index')
    expect(await ledgerNames(db.url)).toEqual(['001_table'])
    const index = await withClient(db.url, (c) => c.query("SELECT to_regclass('ix_t_id') AS i"))
    expect(index.rows[0].i).toBeNull()
  })
})

describe('drift while the ledger lists a newer release', () => {
  it("is unknown: that release's schema is not this build's to judge", async () => {
    const db = await emptyDatabase()
    const migrator = new Migrator({ connectionString: db.url })
    await migrator.up()
    // The newer release's migration: its row, and the column it added.
    await withClient(db.url, async (c) => {
      await c.query(NEWER_ROW)
      await c.query('ALTER TABLE players ADD COLUMN nickname varchar(40)')
    })
    const inspection = await migrator.inspect()
    expect(inspection.unknown).toBe(1)
    expect(inspection.drift).toEqual({ status: 'unknown', differences: [] })
    // The same column without the newer row: drift, named.
    await withClient(db.url, (c) =>
      c.query("DELETE FROM schema_migrations WHERE name = '099_from_a_newer_release'"),
    )
    const after = await migrator.inspect()
    expect(after.drift.status).toBe('drift')
    expect(after.drift.differences.join('\n')).toContain('players.nickname')
  })
})
