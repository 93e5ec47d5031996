import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { expectError, rowCounts } from './domain-helpers.js'

describe('a path that exists with another method', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it.each([
    ['POST', '/health/ready', 'GET, HEAD'],
    ['DELETE', '/teams', 'GET, HEAD, POST'],
    ['PUT', '/teams/7', 'GET, HEAD, PATCH, DELETE'],
    ['POST', '/teams/not-a-number', 'GET, HEAD, PATCH, DELETE'],
    ['GET', '/teams/7/roster/3', 'PUT, DELETE'],
    ['OPTIONS', '/players?search=x', 'GET, HEAD, POST'],
    // Routes of the plugins as well as of the route files.
    ['DELETE', '/metrics', 'GET, HEAD'],
    ['POST', '/docs/json', 'GET, HEAD'],
  ] as const)('%s %s is a 405 with Allow: %s, and changes nothing', async (method, url, allow) => {
    const before = await rowCounts(t.app)
    const res = await t.app.inject({ method, url, headers: AUTH, payload: {} })
    const body = expectError(res, 405, `${method} is not allowed here`)
    expect(body.code).toBe('METHOD_NOT_ALLOWED')
    expect(res.headers.allow).toBe(allow)
    expect(await rowCounts(t.app)).toEqual(before)
  })

  it('is a 405 without the token too: as a 404 would, it tells only what the API document does', async () => {
    const res = await t.app.inject({ method: 'DELETE', url: '/teams' })
    expectError(res, 405)
  })

  it('a path no route has is still Fastify’s own 404', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['POST', '/teams/7/players'],
      ['GET', '/teams/7/roster/3/extra'],
    ] as const) {
      const res = await t.app.inject({ method, url, headers: AUTH })
      expectError(res, 404, `Route ${method}:${url} not found`)
      expect(res.headers.allow).toBeUndefined()
    }
  })
})
