import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { Migrator } from '../../src/migrate/migrator.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'

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
