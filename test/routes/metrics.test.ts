import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'

/** The value of one sample in Prometheus' text format, or undefined when it is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const have = (match[2] ?? '').split(',').filter(Boolean)
    if (want.every((l) => have.includes(l)) && have.length === want.length) return Number(match[3])
  }
  return undefined
}

describe('GET /metrics on a migrated incident database', () => {
  let t: TestApp
  const scrape = async () => {
    const res = await t.app.inject({ url: '/metrics', headers: AUTH })
    expect(res.statusCode).toBe(200)
    return res.body
  }

  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
    // The plugin refreshes this in the background; read it now so the test does not wait.
    await t.app.migrations.inspect()
  })
  afterAll(() => t?.close())

  it.each([
    ['no header', {}],
    ['a wrong token', { authorization: 'Bearer nope' }],
  ])('refuses %s with 401', async (_what, headers) => {
    const res = await t.app.inject({ url: '/metrics', headers })
    expect(res.statusCode).toBe(401)
    expect(res.json()).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED' })
    expect(res.body).not.toContain('http_request_duration_seconds')
  })

  it('answers Prometheus text with readiness, migration and process metrics', async () => {
    const res = await t.app.inject({ url: '/metrics', headers: AUTH })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(res.headers['cache-control']).toBe('no-store')
    const text = res.body
    for (const name of [
      'http_request_duration_seconds',
      'basketball_api_ready',
      'basketball_api_not_ready_reason',
      'basketball_api_migration_run_state',
      'basketball_api_migration_duration_seconds',
      'basketball_api_migrations',
      'basketball_api_schema_drift',
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `)
    }
    expect(sample(text, 'basketball_api_ready')).toBe(1)
    expect(sample(text, 'basketball_api_not_ready_reason', { reason: 'migrating' })).toBe(0)
    expect(sample(text, 'basketball_api_migration_run_state', { state: 'complete' })).toBe(1)
    expect(sample(text, 'basketball_api_migration_run_state', { state: 'failed' })).toBe(0)
    expect(sample(text, 'basketball_api_migrations', { status: 'applied' })).toBe(23)
    expect(sample(text, 'basketball_api_migrations', { status: 'pending' })).toBe(0)
    expect(sample(text, 'basketball_api_schema_drift', { status: 'none' })).toBe(1)
    const m020 = sample(text, 'basketball_api_migration_duration_seconds', {
      name: '020_custom_notes',
      outcome: 'already-present',
    })
    expect(m020).toBeGreaterThanOrEqual(0)
  })

  it('counts a request by route pattern, never by raw URL; probes are left out', async () => {
    const labels = { method: 'GET', route: '/teams/:id', status_code: '404' }
    const before = sample(await scrape(), 'http_request_duration_seconds_count', labels) ?? 0
    const res = await t.app.inject({ url: '/teams/987654', headers: AUTH })
    expect(res.statusCode).toBe(404)
    await t.app.inject({ url: '/no/such/route/424242' })
    await t.app.inject({ url: '/health/ready' })

    const text = await scrape()
    expect(sample(text, 'http_request_duration_seconds_count', labels)).toBe(before + 1)
    expect(sample(text, 'http_request_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBe(
      before + 1,
    )
    expect(text).toContain('route="unmatched"')
    expect(text).not.toContain('987654')
    expect(text).not.toContain('424242')
    expect(text).not.toContain('route="/health/ready"')
    expect(text).not.toContain('route="/metrics"')
  })

  it('counts the OpenAPI document, and what the router refuses, like any request', async () => {
    const docs = { method: 'GET', route: '/docs/json', status_code: '200' }
    const refused = { method: 'GET', route: 'unmatched', status_code: '400' }
    const before = await scrape()
    expect((await t.app.inject({ url: '/docs/json' })).statusCode).toBe(200)
    // A bad percent-encoding: refused by the router, before any route.
    expect((await t.app.inject({ url: '/teams/%ZZ', headers: AUTH })).statusCode).toBe(400)
    const after = await scrape()
    const count = (text: string, labels: Record<string, string>) =>
      sample(text, 'http_request_duration_seconds_count', labels) ?? 0
    expect(count(after, docs)).toBe(count(before, docs) + 1)
    expect(count(after, refused)).toBe(count(before, refused) + 1)
  })
})

describe('GET /metrics while the service is not ready', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({
      template: 'empty',
      env: { MIGRATE_ON_BOOT: 'false' },
      waitReady: false,
    })
  })
  afterAll(() => t?.close())

  it('still answers, with ready 0 and the reason, from an app of its own registry', async () => {
    await vi.waitFor(() => expect(t.app.readiness.reason()).toBe('pending-migrations'), {
      timeout: 30_000,
      interval: 50,
    })
    const res = await t.app.inject({ url: '/metrics', headers: AUTH })
    expect(res.statusCode).toBe(200)
    const text = res.body
    expect(sample(text, 'basketball_api_ready')).toBe(0)
    expect(sample(text, 'basketball_api_not_ready_reason', { reason: 'pending-migrations' })).toBe(
      1,
    )
    expect(sample(text, 'basketball_api_not_ready_reason', { reason: 'migrating' })).toBe(0)
    expect(sample(text, 'basketball_api_migration_run_state', { state: 'complete' })).toBe(0)
    // Ready routes answer 503 and are counted with their pattern.
    expect((await t.app.inject({ url: '/teams', headers: AUTH })).statusCode).toBe(503)
    const after = (await t.app.inject({ url: '/metrics', headers: AUTH })).body
    expect(
      sample(after, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: '/teams',
        status_code: '503',
      }),
    ).toBe(1)
  })
})
