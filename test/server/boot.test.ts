import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { ADMIN_TOKEN, AUTH } from '../helpers/app.js'
import { writeChain } from '../helpers/chains.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'
import { type ServiceProcess, startService } from '../helpers/process.js'

const services: ServiceProcess[] = []
const databases: TestDatabase[] = []
const roles: string[] = []
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop('SIGKILL')))
  await Promise.all(databases.splice(0).map((d) => d.drop()))
  for (const role of roles.splice(0)) {
    await withClient(inject('pgServerUrl'), (c) => c.query(`DROP ROLE IF EXISTS ${role}`))
  }
})

async function boot(env: Record<string, string>, opts: { withPassword?: boolean } = {}) {
  const db = await createTestDatabase('empty')
  databases.push(db)
  let url = db.url
  let password = ''
  if (opts.withPassword) {
    // A role of its own with a password, whatever TEST_DATABASE_URL carries, so that the
    // service is always handed a secret it must not log.
    const role = `boot_${randomBytes(4).toString('hex')}`
    password = `pw-${randomBytes(12).toString('hex')}`
    await withClient(db.url, (c) =>
      c.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`),
    )
    roles.push(role)
    const withRole = new URL(db.url)
    withRole.username = role
    withRole.password = password
    url = withRole.toString()
  }
  const service = await startService({ DATABASE_URL: url, ADMIN_TOKEN, ...env })
  services.push(service)
  return { db, service, password }
}

const getJson = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { headers })
  return {
    status: res.status,
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are whatever JSON the route sends
    body: (await res.json()) as any,
  }
}

describe('a slow migration', () => {
  it('keeps readiness at 503 migrating and names itself in /migrations while it runs, then 200', async () => {
    const dir = await writeChain({
      '001_first': "await context.ensureTable('first_table', { columns: { id: 'integer' } })",
      '002_slow': "await context.query('SELECT pg_sleep(2.5)')",
      '003_after': "await context.ensureTable('after_table', { columns: { id: 'integer' } })",
    })
    const { service } = await boot({ MIGRATIONS_DIR: dir })
    const during = await service.waitFor(
      '/migrations',
      (s, b) => s === 200 && b.current === '002_slow',
      30_000,
      AUTH,
    )
    expect(during.state).toBe('running')
    const status = (name: string) =>
      during.migrations.find((m: { name: string }) => m.name === name).status
    expect([status('001_first'), status('002_slow'), status('003_after')]).toEqual([
      'applied',
      'running',
      'pending',
    ])
    const ready = await getJson(`${service.base}/health/ready`)
    expect(ready).toEqual({ status: 503, body: { status: 'fail', reason: 'migrating' } })
    // Liveness answers while the chain runs: the server listened first.
    expect((await fetch(`${service.base}/health/live`)).status).toBe(200)

    await service.waitFor('/health/ready', (s) => s === 200)
    const after = await getJson(`${service.base}/migrations`, AUTH)
    expect(after.body).toMatchObject({ state: 'complete', applied: 3, pending: 0, current: null })
  })
})

describe('a failing migration', () => {
  it('keeps the process alive and not ready, shows the SQLSTATE, and leaves nothing of it behind', async () => {
    const dir = await writeChain({
      '001_ok': "await context.ensureTable('ok_table', { columns: { id: 'integer' } })",
      '002_broken': [
        "await context.ensureTable('half_table', { columns: { id: 'integer' } })",
        "await context.query('INSERT INTO no_such_table VALUES (1)')",
      ].join('\n'),
      '003_never': "await context.ensureTable('never_table', { columns: { id: 'integer' } })",
    })
    const { db, service, password } = await boot({ MIGRATIONS_DIR: dir }, { withPassword: true })
    await service.waitFor(
      '/health/ready',
      (s, b) => s === 503 && (b as { reason: string }).reason === 'migration-failed',
    )
    const report = await getJson(`${service.base}/migrations`, AUTH)
    expect(report.body.state).toBe('failed')
    expect(report.body.lastError).toMatchObject({ migration: '002_broken', code: '42P01' })
    expect(report.body.lastError.message).toMatch(/no_such_table/)
    const statuses = Object.fromEntries(
      report.body.migrations.map((m: { name: string; status: string }) => [m.name, m.status]),
    )
    expect(statuses).toEqual({
      '001_ok': 'applied',
      '002_broken': 'failed',
      '003_never': 'pending',
    })

    // Error texts are for the admin only.
    const anonymous = await getJson(`${service.base}/health`)
    expect(anonymous.status).toBe(503)
    expect(JSON.stringify(anonymous.body)).not.toMatch(/no_such_table|42P01/)
    const admin = await getJson(`${service.base}/health`, AUTH)
    expect(JSON.stringify(admin.body)).toMatch(/42P01/)

    await withClient(db.url, async (c) => {
      const ledger = await c.query('SELECT name FROM schema_migrations ORDER BY name')
      expect(ledger.rows).toEqual([{ name: '001_ok' }])
      const tables = await c.query(
        "SELECT relname FROM pg_class WHERE relname IN ('ok_table', 'half_table', 'never_table')",
      )
      expect(tables.rows).toEqual([{ relname: 'ok_table' }])
    })
    // Still alive after the retry backoff has started: no crash loop.
    await new Promise((r) => setTimeout(r, 1500))
    expect(service.child.exitCode).toBeNull()
    expect((await fetch(`${service.base}/health/live`)).status).toBe(200)
    expect(service.logs.some((l) => l.msg === 'migration failed; will retry')).toBe(true)
    // Requests are logged, one line each, and no secret is: not the token, not the DB password.
    const completed = service.logs.filter((l) => l.msg === 'request completed')
    expect(completed.length).toBeGreaterThan(0)
    expect(completed.every((l) => (l.req as { url?: string })?.url !== undefined)).toBe(true)
    // Probes (polled above, 503 and 200) log nothing at info.
    const urls = completed.map((l) => (l.req as { url: string }).url)
    expect(urls.some((u) => u.startsWith('/health/'))).toBe(false)
    expect(urls).toContain('/health')
    const text = JSON.stringify(service.logs) + service.stderr()
    expect(text).not.toContain(ADMIN_TOKEN)
    expect(text).not.toContain(password)
  })
})

describe('a migration the data breaks', () => {
  it("shows PostgreSQL's DETAIL, the row to fix, to the admin and in the log only", async () => {
    const dir = await writeChain({
      '001_numbers': `await context.query("CREATE TABLE numbers (n int); INSERT INTO numbers VALUES (7), (7)")`,
      '002_unique': "await context.query('CREATE UNIQUE INDEX ux_numbers ON numbers (n)')",
    })
    const { service } = await boot({ MIGRATIONS_DIR: dir })
    await service.waitFor(
      '/health/ready',
      (s, b) => s === 503 && (b as { reason: string }).reason === 'migration-failed',
    )
    const detail = 'Key (n)=(7) is duplicated.'
    const report = await getJson(`${service.base}/migrations`, AUTH)
    // The contract's three keys, exactly; the row to fix follows the message.
    expect(report.body.lastError).toEqual({
      migration: '002_unique',
      message: `could not create unique index "ux_numbers": ${detail}`,
      code: '23505',
    })
    expect(JSON.stringify((await getJson(`${service.base}/health`, AUTH)).body)).toContain(detail)
    expect(JSON.stringify((await getJson(`${service.base}/health`)).body)).not.toContain('Key (n)')
    const failed = service.logs.find((l) => l.msg === 'migration failed; will retry')
    expect((failed?.err as { detail?: string })?.detail).toBe(detail)
  })
})

describe('six processes booting together on one empty database', () => {
  it('run each migration exactly once and all become ready', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    const six = await Promise.all(
      Array.from({ length: 6 }, () => startService({ DATABASE_URL: db.url, ADMIN_TOKEN })),
    )
    services.push(...six)
    await Promise.all(
      six.map((s) => s.waitFor('/health/ready', (status) => status === 200, 60_000)),
    )

    const applied = six.flatMap((s) => s.logs.filter((l) => l.msg === 'migration applied'))
    const names = applied.map((l) => l.migration as string).sort()
    expect(names).toHaveLength(23)
    expect(new Set(names).size).toBe(23)
    const ledger = await withClient(db.url, (c) =>
      c.query<{ name: string; applied_by: string }>(
        'SELECT name, applied_by FROM schema_migrations',
      ),
    )
    expect(ledger.rows).toHaveLength(23)
    for (const s of six) {
      const report = await getJson(`${s.base}/migrations`, AUTH)
      expect(report.body).toMatchObject({ state: 'complete', applied: 23, pending: 0 })
    }
  })
})

describe('configuration errors', () => {
  it('stop the process at once with a message that names the variable', async () => {
    const service = await startService({
      PORT: 'not-a-port',
      DATABASE_URL: 'postgres://x@127.0.0.1:1/x',
    })
    services.push(service)
    const { code } = await service.exited
    expect(code).toBe(1)
    expect(service.stderr()).toMatch(/invalid configuration: PORT: expected integer/)
  })
})

describe('MIGRATE_ON_BOOT=false', () => {
  it('serves without migrating and turns ready once another process has applied the chain', async () => {
    const { db, service } = await boot({ MIGRATE_ON_BOOT: 'false' })
    await service.waitFor('/health/ready', (s, b) => s === 503 && b.reason === 'pending-migrations')
    const report = await getJson(`${service.base}/migrations`, AUTH)
    expect(report.body).toMatchObject({ state: 'idle', applied: 0, pending: 23 })
    await withClient(db.url, async (c) => {
      const { rows } = await c.query("SELECT to_regclass('schema_migrations') AS t")
      expect(rows[0].t).toBeNull()
    })
    // A migration Job (here: the engine in-process) applies the chain; the service notices.
    const { Migrator } = await import('../../src/migrate/migrator.js')
    await new Migrator({ connectionString: db.url }).up()
    await service.waitFor('/health/ready', (s) => s === 200, 15_000)
  })
})

describe('MIGRATE_ON_BOOT=false with two files of one migration name', () => {
  it('is not ready, though the ledger lists the migration: which file was meant is unknown', async () => {
    const dir = await writeChain({ '001_one': "await context.query('SELECT 1')" })
    const db = await createTestDatabase('empty')
    databases.push(db)
    const { Migrator } = await import('../../src/migrate/migrator.js')
    await new Migrator({ connectionString: db.url, migrationsDir: dir }).up()
    await writeFile(join(dir, '001_one.js'), 'module.exports = { async up() {} }\n')
    const service = await startService({
      DATABASE_URL: db.url,
      ADMIN_TOKEN,
      MIGRATE_ON_BOOT: 'false',
      MIGRATIONS_DIR: dir,
    })
    services.push(service)
    await service.waitFor('/health/ready', (s, b) => s === 503 && b.reason === 'migration-failed')
    const report = await getJson(`${service.base}/migrations`, AUTH)
    expect(report.body.lastError).toMatchObject({ migration: '001_one' })
    expect(report.body.lastError.message).toContain('(001_one.js, 001_one.mjs): remove all but one')
  })
})

describe('the embedded default (no DATABASE_URL)', () => {
  it('starts PostgreSQL under DATA_DIR, migrates, serves, and stops it on SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'embedded-'))
    // The operator's own directory (sticky, group-writable, closed to others): kept as it
    // is, but for search (x) for others when PostgreSQL runs as another user (as root).
    await chmod(dataDir, 0o1770)
    const service = await startService({ DATA_DIR: dataDir })
    services.push(service)
    await service.waitFor('/health/ready', (s) => s === 200, 60_000)
    expect(((await stat(dataDir)).mode & 0o7777).toString(8)).toBe(
      process.getuid?.() === 0 ? '1771' : '1770',
    )
    const tokenLine = service.logs.find((l) => typeof l.adminToken === 'string')
    expect(tokenLine).toBeDefined()
    const token = String(tokenLine?.adminToken)
    const report = await getJson(`${service.base}/migrations`, { authorization: `Bearer ${token}` })
    expect(report.body).toMatchObject({ state: 'complete', applied: 23 })
    const pidFile = join(dataDir, 'pg', 'postmaster.pid')
    const postgresPid = Number((await readFile(pidFile, 'utf8')).split('\n')[0])
    expect(postgresPid).toBeGreaterThan(0)

    expect(await service.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    expect(existsSync(pidFile)).toBe(false) // PostgreSQL shut down cleanly
    await rm(dataDir, { recursive: true, force: true })
  })

  it('after a SIGKILL, the next start stops the PostgreSQL left running and comes up ready', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'embedded-'))
    const first = await startService({ DATA_DIR: dataDir })
    services.push(first)
    await first.waitFor('/health/ready', (s) => s === 200, 60_000)
    const pidFile = join(dataDir, 'pg', 'postmaster.pid')
    const orphan = Number((await readFile(pidFile, 'utf8')).split('\n')[0])
    await first.stop('SIGKILL')
    expect(() => process.kill(orphan, 0)).not.toThrow() // still running without its parent

    const second = await startService({ DATA_DIR: dataDir })
    services.push(second)
    await second.waitFor('/health/ready', (s) => s === 200, 60_000)
    expect(second.logs.some((l) => l.postgresPid === orphan)).toBe(true)
    expect(() => process.kill(orphan, 0)).toThrow()
    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    await rm(dataDir, { recursive: true, force: true })
  })
})
