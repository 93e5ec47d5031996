import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import { Migrator } from '../../src/migrate/migrator.js'
import { MigrationSupervisor } from '../../src/migrate/supervisor.js'
import { TEMPLATES, withClient } from '../helpers/postgres.js'

// In production the service connects as a role that owns its database, not as a
// superuser (every other test does). Nothing the engine does may need more: the chain,
// the lock and its NOTIFY, the session settings, the catalog reads behind drift.

const server = inject('pgServerUrl')
const suffix = randomBytes(4).toString('hex')
const role = `club_app_${suffix}`
const database = `t_owned_${suffix}`
const password = randomBytes(12).toString('hex')
let url = ''

beforeAll(async () => {
  await withClient(server, async (c) => {
    await c.query(
      `CREATE ROLE ${role} LOGIN PASSWORD '${password}' NOSUPERUSER NOCREATEDB NOCREATEROLE`,
    )
    await c.query(`CREATE DATABASE ${database} OWNER ${role} TEMPLATE ${TEMPLATES.empty}`)
  })
  const u = new URL(server)
  u.username = role
  u.password = password
  u.pathname = `/${database}`
  url = u.toString()
})

afterAll(async () => {
  await withClient(server, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await c.query(`DROP ROLE IF EXISTS ${role}`)
  })
})

it('a role that owns its database, and nothing more, applies the chain once from two runs, with no drift', async () => {
  const isSuperuser = await withClient(url, async (c) => {
    const { rows } = await c.query<{ su: string }>("SELECT current_setting('is_superuser') AS su")
    return rows[0]?.su
  })
  expect(isSuperuser).toBe('off')

  // Two replicas at once: one applies, the other waits for the lock and finds nothing to do.
  const runs = await Promise.all([
    new Migrator({ connectionString: url }).up(),
    new Migrator({ connectionString: url }).up(),
  ])
  expect(runs.map((r) => r.length).sort((a, b) => a - b)).toEqual([0, 23])

  const migrator = new Migrator({ connectionString: url })
  const inspection = await migrator.inspect()
  expect(inspection.applied).toBe(23)
  expect(inspection.pending).toBe(0)
  expect(inspection.drift).toEqual({ status: 'none', differences: [] })
  expect(await migrator.up()).toEqual([])
})

it('a role allowed one connection: the run needs two, fails with PostgreSQL’s reason, and writes nothing', async () => {
  // The watch session opens while the lock is tried; the run waits for it before writing.
  const limited = `club_one_${suffix}`
  const limitedDb = `t_one_${suffix}`
  await withClient(server, async (c) => {
    await c.query(`CREATE ROLE ${limited} LOGIN PASSWORD '${password}' CONNECTION LIMIT 1`)
    await c.query(`CREATE DATABASE ${limitedDb} OWNER ${limited} TEMPLATE ${TEMPLATES.empty}`)
  })
  try {
    const u = new URL(server)
    u.username = limited
    u.password = password
    u.pathname = `/${limitedDb}`
    const migrator = new Migrator({ connectionString: u.toString() })
    await expect(migrator.up()).rejects.toMatchObject({ code: '53300' })
    expect(migrator.view()).toMatchObject({ state: 'failed', lastError: { code: '53300' } })
    const asAdmin = new URL(server)
    asAdmin.pathname = `/${limitedDb}`
    const left = await withClient(asAdmin.toString(), async (c) => {
      const tables = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace",
      )
      const locks = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'",
      )
      return { tables: tables.rows[0]?.n, advisoryLocks: locks.rows[0]?.n }
    })
    expect(left).toEqual({ tables: 0, advisoryLocks: 0 })
  } finally {
    await withClient(server, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${limitedDb} WITH (FORCE)`)
      await c.query(`DROP ROLE IF EXISTS ${limited}`)
    })
  }
})

it('credentials the server refuses: the supervisor says database-unavailable, not migration-failed', async () => {
  // A role that does not exist: 28000 where the server trusts loopback, 28P01 where it asks
  // for a password (PostgreSQL does not say which roles exist).
  const u = new URL(server)
  u.username = `nobody_${suffix}`
  u.password = 'not-the-password'
  const migrator = new Migrator({ connectionString: u.toString() })
  const supervisor = new MigrationSupervisor(migrator, {
    migrateOnBoot: true,
    logger: { info() {}, warn() {}, error() {}, debug() {} },
    retryMs: 60_000,
  })
  void supervisor.start()
  try {
    await expect.poll(() => supervisor.status().lastError, { timeout: 10_000 }).not.toBeNull()
    expect(supervisor.blocker()).toBe('database-unavailable')
    expect(['28000', '28P01']).toContain(supervisor.status().lastError?.code)
    expect(supervisor.status().lastError?.migration).toBeNull()
  } finally {
    await supervisor.stop()
  }
})
