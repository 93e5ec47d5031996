import { afterAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { ADMIN_TOKEN, AUTH, buildTestApp, type TestApp, watchReadiness } from '../helpers/app.js'
import { withClient } from '../helpers/postgres.js'

/**
 * Ledger rows lost under a running, ready service (deleted by hand; an older backup
 * restored): the next background inspection finds migrations of this build pending and,
 * with MIGRATE_ON_BOOT, applies them as a boot would, while readiness stays 200.
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
  lastError: { code: string | null; migration: string | null } | null
  migrations: Array<{ name: string; status: string; outcome?: string }>
}
const report = async (t: TestApp) =>
  (await t.app.inject({ url: '/migrations', headers: AUTH })).json() as Report
const stateCheck = async (t: TestApp) =>
  (await t.app.inject({ url: '/health', headers: AUTH })).json().checks['migrations:state'][0]
const outcome = (r: Report, prefix: string) => r.migrations.find((m) => m.name.startsWith(prefix))

describe('ledger rows lost while the service is ready', () => {
  it('are applied again by the next inspection (found in place: already-present; missing: ran), ready all along', async () => {
    const t = await buildTestApp({ inspectEveryMs: 200 })
    apps.push(t)
    const stop = watchReadiness(t.app)
    await withClient(t.db.url, (c) =>
      c.query(`DROP INDEX ix_games_team_starts;
               DELETE FROM schema_migrations WHERE name IN ('017_games_team_starts_index', '020_custom_notes')`),
    )
    const healed = await until('the ledger to be complete again', async () => {
      const r = await report(t)
      return r.pending === 0 && outcome(r, '017')?.status === 'applied' ? r : undefined
    })
    expect(await stop()).toEqual([null])
    expect(outcome(healed, '017')?.outcome).toBe('ran')
    expect(outcome(healed, '020')?.outcome).toBe('already-present')
    expect(healed.lastError).toBeNull()
    const index = await withClient(t.db.url, (c) =>
      c.query(`SELECT to_regclass('ix_games_team_starts') IS NOT NULL AS present`),
    )
    expect(index.rows[0].present).toBe(true)
    expect((await stateCheck(t)).status).toBe('pass')
  })

  it('when applying them fails, /health warns with the error, readiness stays 200, and a later inspection retries', async () => {
    const t = await buildTestApp({ inspectEveryMs: 200 })
    apps.push(t)
    // 019's unique jersey index dropped by hand, a duplicate number let in, its row lost.
    const team = await withClient(t.db.url, async (c) => {
      await c.query(`DROP INDEX ux_player_teams_team_jersey`)
      const { rows } = await c.query<{ team_id: number }>(
        `SELECT team_id FROM player_teams GROUP BY team_id HAVING count(*) > 1 ORDER BY team_id LIMIT 1`,
      )
      const teamId = rows[0]?.team_id
      expect(teamId).toBeDefined()
      await c.query(`UPDATE player_teams SET jersey_number = 7 WHERE team_id = $1`, [teamId])
      await c.query(`DELETE FROM schema_migrations WHERE name = '019_player_teams'`)
      return teamId
    })
    const stop = watchReadiness(t.app)
    const failing = await until('the re-apply to fail', async () => {
      const check = await stateCheck(t)
      return check.status === 'warn' && check.output ? check : undefined
    })
    expect(failing.output).toMatch(/^23505 /)
    expect((await report(t)).lastError).toMatchObject({
      code: '23505',
      migration: '019_player_teams',
    })
    // The data fixed by hand: a later inspection applies 019 and the warning goes.
    await withClient(t.db.url, (c) =>
      c.query(
        `UPDATE player_teams SET jersey_number = NULL
          WHERE team_id = $1 AND player_id <> (SELECT min(player_id) FROM player_teams WHERE team_id = $1)`,
        [team],
      ),
    )
    const healed = await until('a retry to succeed', async () => {
      const r = await report(t)
      return r.pending === 0 && r.lastError === null ? r : undefined
    })
    expect(outcome(healed, '019')?.outcome).toBe('ran')
    expect(await stop()).toEqual([null])
    expect((await stateCheck(t)).status).toBe('pass')
  })

  it('without MIGRATE_ON_BOOT, are reported (/health warns) and left to the migrate job', async () => {
    const migrated = await buildTestApp({})
    apps.push(migrated)
    // A second service on the same database, not migrating (the Job set-up).
    const config = loadConfig({
      DATABASE_URL: migrated.db.url,
      ADMIN_TOKEN,
      LOG_LEVEL: 'silent',
      MIGRATE_ON_BOOT: 'false',
      HEALTH_CHECK_INTERVAL_MS: '200',
    })
    const app = await buildApp({
      config,
      databaseUrl: migrated.db.url,
      adminToken: ADMIN_TOKEN,
      logger: false,
      inspectEveryMs: 200,
    })
    const t: TestApp = { ...migrated, app, close: () => app.close() }
    apps.push(t)
    await app.ready()
    await app.migrations.supervisor.settled()
    expect(app.readiness.reason()).toBeNull()

    const stop = watchReadiness(t.app)
    await withClient(t.db.url, (c) =>
      c.query(`DELETE FROM schema_migrations WHERE name = '020_custom_notes'`),
    )
    const check = await until('/health to warn', async () => {
      const c = await stateCheck(t)
      return c.status === 'warn' ? c : undefined
    })
    expect(check.observedValue).toBe('complete')
    // Several inspections later, still pending: this replica does not migrate.
    await new Promise((r) => setTimeout(r, 800))
    const r = await report(t)
    expect(r.pending).toBe(1)
    expect(outcome(r, '020')?.status).toBe('pending')
    expect(await stop()).toEqual([null])
  })
})
