import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, type TestApp } from '../helpers/app.js'

let t: TestApp
beforeAll(async () => {
  t = await buildTestApp()
})
afterAll(() => t.close())

describe('route schemas', () => {
  it('are not compiled at start-up, and every one of them compiles', async () => {
    // Compiled on first use (boot time); the warm-up must find nothing broken.
    expect(t.app.routeSchemas.pending).toBeGreaterThan(20)
    await t.app.routeSchemas.warm()
    expect(t.app.routeSchemas.pending).toBe(0)
    const live = await t.app.inject({ method: 'GET', url: '/health/live' })
    expect(live.json()).toEqual({ status: 'pass' })
  })
})
