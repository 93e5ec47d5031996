import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, AUTH, buildTestApp, type TestApp } from '../helpers/app.js'

describe('probes and /migrations on a migrated incident database', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it('liveness and readiness pass, with no-store, also for HEAD', async () => {
    for (const url of ['/health/live', '/health/ready']) {
      const res = await t.app.inject({ url })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({ status: 'pass' })
      expect(res.headers['cache-control']).toBe('no-store')
      const head = await t.app.inject({ method: 'HEAD', url })
      expect(head.statusCode).toBe(200)
    }
  })

  it('/health is application/health+json; error details only for the admin', async () => {
    const res = await t.app.inject({ url: '/health' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/health\+json/)
    const body = res.json()
    expect(body.status).toBe('pass')
    expect(body.checks['database:connection'][0].status).toBe('pass')
  })

  it.each([
    ['a lower-case scheme (schemes are case-insensitive, RFC 9110 11.1)', `bearer ${ADMIN_TOKEN}`],
    ['an upper-case scheme', `BEARER ${ADMIN_TOKEN}`],
    ['spaces around the token', `Bearer   ${ADMIN_TOKEN}  `],
  ])('/migrations takes %s', async (_what, authorization) => {
    const res = await t.app.inject({ url: '/migrations', headers: { authorization } })
    expect(res.statusCode).toBe(200)
  })

  it('/migrations shows every migration with its outcome and changes', async () => {
    const res = await t.app.inject({ url: '/migrations', headers: AUTH })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({
      state: 'complete',
      applied: 23,
      pending: 0,
      current: null,
      lastError: null,
    })
    expect(body.drift).toEqual({ status: 'none', differences: [] })
    const m020 = body.migrations.find((m: { name: string }) => m.name === '020_custom_notes')
    expect(m020).toMatchObject({
      status: 'applied',
      outcome: 'already-present',
      checksumMatches: true,
      changes: [{ object: 'players.custom_notes', action: 'exists' }],
    })
    expect(m020.checksum).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(new Date(m020.appliedAt).getTime()).not.toBeNaN()
  })

  it.each([
    ['no header', {}],
    ['a wrong token', { authorization: 'Bearer nope' }],
    ['a token with a suffix', { authorization: `${AUTH.authorization}x` }],
    ['basic auth', { authorization: 'Basic dGVzdDp0ZXN0' }],
    ['the token and more after a space', { authorization: `${AUTH.authorization} extra` }],
    ['the token twice', { authorization: `${AUTH.authorization}, ${AUTH.authorization}` }],
  ])('/migrations refuses %s with 401 and learns nothing', async (_what, headers) => {
    const res = await t.app.inject({ url: '/migrations', headers })
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'a valid admin bearer token is required',
      code: 'UNAUTHORIZED',
    })
  })
})
