import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type App, buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { ADMIN_TOKEN, AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { withClient } from '../helpers/postgres.js'

/**
 * Rolling deploy and rollback: a newer release has run a migration this build
 * does not have (`024_future_feature`), so its ledger row is `unknown` here.
 * That is a warning, never a reason to stop being ready: an old replica must
 * keep serving while a new one rolls out, and a rollback must come up.
 */
const FUTURE = '024_future_feature'

async function insertFutureRow(url: string) {
  await withClient(url, (c) =>
    c.query(
      `INSERT INTO schema_migrations (name, checksum, outcome, duration_ms, changes, applied_by)
       VALUES ($1, 'sha256:${'f'.repeat(64)}', 'ran', 12,
               '[{"object":"players.nickname","action":"created"}]', 'newer-build:1')`,
      [FUTURE],
    ),
  )
}

async function appOn(url: string): Promise<App> {
  const config = loadConfig({
    DATABASE_URL: url,
    ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    HEALTH_CHECK_INTERVAL_MS: '200',
  })
  const app = await buildApp({ config, databaseUrl: url, adminToken: ADMIN_TOKEN, logger: false })
  await app.ready()
  await app.migrations.supervisor.settled()
  return app
}

describe('a ledger row from a newer build', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it('while serving: /migrations shows it as unknown, /health warns (200), readiness stays 200', async () => {
    await insertFutureRow(t.db.url)
    const report = await t.app.inject({ url: '/migrations', headers: AUTH })
    expect(report.statusCode).toBe(200)
    const body = report.json()
    const future = body.migrations.find((m: { name: string }) => m.name === FUTURE)
    expect(future).toMatchObject({
      name: FUTURE,
      status: 'unknown',
      outcome: 'ran',
      checksumMatches: null,
      changes: [{ object: 'players.nickname', action: 'created' }],
    })
    // Nothing of this build is pending, and the unknown row is not counted as applied.
    expect(body).toMatchObject({ state: 'complete', applied: 23, pending: 0, lastError: null })

    const health = await t.app.inject({ url: '/health' })
    expect(health.statusCode).toBe(200)
    expect(health.headers['content-type']).toMatch(/^application\/health\+json/)
    const h = health.json()
    expect(h.status).toBe('warn')
    expect(h.checks['migrations:unknown']).toEqual([{ status: 'warn', observedValue: 1 }])
    expect(h.checks['migrations:state'][0].status).toBe('pass')

    const ready = await t.app.inject({ url: '/health/ready' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({ status: 'pass' })
  })

  it('rollback: this build boots on that database, becomes ready and warns without an admin call', async () => {
    // The row is still there from the test above: boot an older build (this one) on it.
    const app = await appOn(t.db.url)
    try {
      expect(app.readiness.reason()).toBeNull()
      // The inspection after boot is in the background; wait for it rather than calling /migrations.
      const deadline = Date.now() + 10_000
      while (app.migrations.lastInspection() === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
      }
      const health = await app.inject({ url: '/health' })
      expect(health.statusCode).toBe(200)
      expect(health.json().status).toBe('warn')
      expect(health.json().checks['migrations:unknown'][0]).toEqual({
        status: 'warn',
        observedValue: 1,
      })
      expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200)
      // The older build wrote nothing: its chain was complete, the newer row untouched.
      const ledger = await withClient(t.db.url, (c) =>
        c.query('SELECT name, applied_by FROM schema_migrations WHERE name = $1', [FUTURE]),
      )
      expect(ledger.rows).toEqual([{ name: FUTURE, applied_by: 'newer-build:1' }])
    } finally {
      await app.close()
    }
  })

  it('the newer row gone again (its release rolled back by hand): /health passes after /migrations', async () => {
    await withClient(t.db.url, (c) =>
      c.query('DELETE FROM schema_migrations WHERE name = $1', [FUTURE]),
    )
    const report = await t.app.inject({ url: '/migrations', headers: AUTH })
    expect(report.json().migrations.some((m: { name: string }) => m.name === FUTURE)).toBe(false)
    const health = await t.app.inject({ url: '/health' })
    expect(health.statusCode).toBe(200)
    expect(health.json().status).toBe('pass')
  })
})
