import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Migrator } from '../../src/migrate/migrator.js'
import { writeChain } from '../helpers/chains.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

const databases: TestDatabase[] = []
afterEach(async () => {
  await Promise.all(databases.splice(0).map((d) => d.drop()))
})

/** A chain whose 002 builds an index with CREATE INDEX CONCURRENTLY, outside a transaction. */
async function concurrentIndexChain(sleepSeconds = 0) {
  const dir = await writeChain({
    '001_table': [
      "await context.ensureTable('items', { columns: { id: 'integer NOT NULL', code: 'text' } })",
      "await context.query('INSERT INTO items SELECT g, g::text FROM generate_series(1, 1000) g WHERE NOT EXISTS (SELECT 1 FROM items)')",
    ].join('\n'),
  })
  await writeFile(
    join(dir, '002_items_code_index.mjs'),
    `export const transaction = false
export async function up({ context }) {
  ${sleepSeconds > 0 ? `await context.query('SELECT pg_sleep(${sleepSeconds})')` : ''}
  await context.ensureIndex('ux_items_code', { table: 'items', definition: '(code)', unique: true, concurrently: true })
}
`,
  )
  return dir
}

const indexState = (url: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query<{ valid: boolean }>(
      "SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ux_items_code'",
    )
    return rows[0] === undefined ? 'absent' : rows[0].valid ? 'valid' : 'invalid'
  })

describe('a migration outside a transaction (CREATE INDEX CONCURRENTLY)', () => {
  it('builds the index and records its ledger row last', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const migrator = new Migrator({
      connectionString: db.url,
      migrationsDir: await concurrentIndexChain(),
    })
    expect(await migrator.up()).toEqual(['001_table', '002_items_code_index'])
    expect(await indexState(db.url)).toBe('valid')
    const row = (await migrator.ledger()).find((r) => r.name === '002_items_code_index')
    expect(row?.changes).toEqual([{ object: 'ux_items_code', action: 'created' }])
  })

  it('rebuilds the INVALID index a failed or killed build left behind', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const dir = await concurrentIndexChain()
    await new Migrator({ connectionString: db.url, migrationsDir: dir }).up({ to: '001_table' })
    // A concurrent unique build that meets a duplicate fails and leaves its index INVALID.
    await withClient(db.url, async (c) => {
      await c.query("INSERT INTO items VALUES (1001, '1')")
      await expect(
        c.query('CREATE UNIQUE INDEX CONCURRENTLY ux_items_code ON items (code)'),
      ).rejects.toMatchObject({ code: '23505' })
      await c.query('DELETE FROM items WHERE id = 1001')
    })
    expect(await indexState(db.url)).toBe('invalid')

    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    expect(await migrator.up()).toEqual(['002_items_code_index'])
    expect(await indexState(db.url)).toBe('valid')
    const row = (await migrator.ledger()).find((r) => r.name === '002_items_code_index')
    expect(row).toMatchObject({
      outcome: 'ran',
      changes: [{ object: 'ux_items_code', action: 'repaired' }],
    })
  })

  it('is not stalled by a replica that waits for the lock (it polls, holding no snapshot)', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const dir = await concurrentIndexChain(1)
    const first = new Migrator({ connectionString: db.url, migrationsDir: dir })
    const second = new Migrator({ connectionString: db.url, migrationsDir: dir })
    const running = first.up()
    // Once the first holds the lock (it is running), start the second while the build is ahead.
    // (Not a fixed sleep: on a loaded machine the first took 110-140 ms to get there.)
    await expect.poll(() => first.view().state, { timeout: 20_000, interval: 10 }).toBe('running')
    const waiting = second.up()
    const started = Date.now()
    await expect(running).resolves.toEqual(['001_table', '002_items_code_index'])
    expect(Date.now() - started).toBeLessThan(20_000)
    await expect(waiting).resolves.toEqual([])
    expect(await indexState(db.url)).toBe('valid')
  })
})
