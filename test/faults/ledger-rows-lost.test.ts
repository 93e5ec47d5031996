import { afterAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { ADMIN_TOKEN, AUTH, buildTestApp, type TestApp, watchReadiness } from '../helpers/app.js'
import { withClient } from '../helpers/postgres.js'

/**
 * Ledger rows of this build lost under a running, ready service (deleted by hand; an
 * older backup restored): the background inspection reports them (`/health` warns, one
 * log line) and leaves them to a boot or the migrate CLI: DDL of its own could land in
 * the middle of a restore. Readiness stays 200 all along.
 */
const apps: TestApp[] = []
afterAll(async () => {
  // In reverse: a service on another's database closes before that database is dropped.
  for (const t of apps.reverse()) await t.close()
})

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const value = await fn()
    if (value !== undefined) return value
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

type Report = {
  state: string
  pending: number
  migrations: Array<{ name: string; status: string; outcome?: string }>
}
const report = async (t: TestApp) =>
  (await t.app.inject({ url: '/migrations', headers: AUTH })).json() as Report
const stateCheck = async (t: TestApp) =>
  (await t.app.inject({ url: '/health', headers: AUTH })).json().checks['migrations:state'][0]
const migration = (r: Report, prefix: string) => r.migrations.find((m) => m.name.startsWith(prefix))
const indexPresent = async (url: string) =>
  (
    await withClient(url, (c) =>
      c.query(`SELECT to_regclass('ix_games_team_starts') IS NOT NULL AS present`),
    )
  ).rows[0].present as boolean

describe('ledger rows lost while the service is ready', () => {
  it('are reported (/health warns, one log line), not applied while serving; the next boot applies them', async () => {
    const lines: string[] = []
    const t = await buildTestApp({
      inspectEveryMs: 100,
      logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
    })
    apps.push(t)
    const stop = watchReadiness(t.app)
    await withClient(t.db.url, (c) =>
      c.query(`DROP INDEX ix_games_team_starts;
               DELETE FROM schema_migrations WHERE name IN ('017_games_team_starts_index', '020_custom_notes')`),
    )
    const check = await until('/health to warn', async () => {
      const c = await stateCheck(t)
      return c.status === 'warn' ? c : undefined
    })
    expect(check.observedValue).toBe('complete')
    // Several inspections later: still pending, nothing created, one line about it.
    await new Promise((r) => setTimeout(r, 800))
    const r = await report(t)
    expect(r.pending).toBe(2)
    expect(migration(r, '017')?.status).toBe('pending')
    expect(migration(r, '020')?.status).toBe('pending')
    expect(await indexPresent(t.db.url)).toBe(false)
    expect(lines.filter((l) => l.includes('pending again'))).toHaveLength(1)
    expect(JSON.parse(lines.find((l) => l.includes('pending again')) ?? '{}')).toMatchObject({
      level: 40,
      pending: 2,
    })
    expect(await stop()).toEqual([null])

    // A second replica booting on the database applies them, as a restart would.
    const config = loadConfig({ DATABASE_URL: t.db.url, ADMIN_TOKEN, LOG_LEVEL: 'silent' })
    const app = await buildApp({ config, databaseUrl: t.db.url, adminToken: ADMIN_TOKEN })
    apps.push({ ...t, app, close: () => app.close() })
    await app.ready()
    await app.migrations.supervisor.settled()
    expect(app.readiness.reason()).toBeNull()
    expect(await indexPresent(t.db.url)).toBe(true)
    const healed = await until('the first replica to see it', async () => {
      const r = await report(t)
      return r.pending === 0 ? r : undefined
    })
    expect(migration(healed, '017')?.outcome).toBe('ran')
    expect(migration(healed, '020')?.outcome).toBe('already-present')
    await until('/health to pass', async () =>
      (await stateCheck(t)).status === 'pass' ? true : undefined,
    )
    await until('the log to say so', async () =>
      lines.some((l) => l.includes('no migration of this build is pending any more'))
        ? true
        : undefined,
    )
  })

  it('without MIGRATE_ON_BOOT, the line points to the migrate job, since a restart would not apply them', async () => {
    const migrated = await buildTestApp({})
    apps.push(migrated)
    const lines: string[] = []
    const config = loadConfig({
      DATABASE_URL: migrated.db.url,
      ADMIN_TOKEN,
      LOG_LEVEL: 'silent',
      MIGRATE_ON_BOOT: 'false',
    })
    const app = await buildApp({
      config,
      databaseUrl: migrated.db.url,
      adminToken: ADMIN_TOKEN,
      logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
      inspectEveryMs: 100,
    })
    const t: TestApp = { ...migrated, app, close: () => app.close() }
    apps.push(t)
    await app.ready()
    await app.migrations.supervisor.settled()
    expect(app.readiness.reason()).toBeNull()
    await withClient(t.db.url, (c) =>
      c.query(`DELETE FROM schema_migrations WHERE name = '020_custom_notes'`),
    )
    const line = await until('the warning', async () =>
      lines.find((l) => l.includes('pending again')),
    )
    expect(JSON.parse(line).msg).toMatch(/migrate job .*MIGRATE_ON_BOOT=false/)
    expect((await stateCheck(t)).status).toBe('warn')
    expect(app.readiness.reason()).toBeNull()
  })

  it('rows from a newer build (unknown) are no reason to warn about pending ones', async () => {
    const t = await buildTestApp({ inspectEveryMs: 100 })
    apps.push(t)
    await withClient(t.db.url, (c) =>
      c.query(`INSERT INTO schema_migrations (name, checksum, outcome, duration_ms, changes, applied_by)
               VALUES ('024_from_a_newer_build', 'sha256:x', 'ran', 1, '[]', 'test')`),
    )
    const r = await until('the row to be seen', async () => {
      const r = await report(t)
      return migration(r, '024')?.status === 'unknown' ? r : undefined
    })
    expect(r.pending).toBe(0)
    expect((await stateCheck(t)).status).toBe('pass')
  })
})
