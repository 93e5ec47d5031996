import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { expectError } from './domain-helpers.js'

const DOMAIN_ROUTES = [
  ['get', '/teams'],
  ['post', '/teams'],
  ['get', '/teams/{id}'],
  ['patch', '/teams/{id}'],
  ['delete', '/teams/{id}'],
  ['get', '/teams/{id}/roster'],
  ['put', '/teams/{id}/roster/{playerId}'],
  ['delete', '/teams/{id}/roster/{playerId}'],
  ['get', '/players'],
  ['post', '/players'],
  ['get', '/players/{id}'],
  ['patch', '/players/{id}'],
  ['delete', '/players/{id}'],
  ['get', '/teams/{id}/games'],
  ['post', '/teams/{id}/games'],
  ['get', '/games/{id}'],
  ['patch', '/games/{id}'],
  ['delete', '/games/{id}'],
] as const

describe('GET /docs/json', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it('serves an OpenAPI 3.1 document of every domain route, bearer-secured', async () => {
    const res = await t.app.inject({ url: '/docs/json' })
    expect(res.statusCode).toBe(200)
    const doc = res.json()
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.components.securitySchemes.bearerAuth).toEqual(
      expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    )
    for (const [method, path] of DOMAIN_ROUTES) {
      const op = doc.paths[path]?.[method]
      expect(op, `${method} ${path}`).toBeDefined()
      expect(op.security).toEqual([{ bearerAuth: [] }])
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '503']))
    }
    expect(Object.keys(doc.paths['/teams'].post.responses)).toEqual(
      expect.arrayContaining(['201', '400', '404', '413', '415']),
    )
    expect(Object.keys(doc.paths['/teams/{id}/roster/{playerId}'].put.responses)).toEqual(
      expect.arrayContaining(['200', '201', '409']),
    )
    expect(Object.keys(doc.paths['/games/{id}'].delete.responses)).toContain('204')
    // A 405 answers a method a path does not have, so no operation lists it: the document says it once.
    expect(doc.info.description).toContain('405 `METHOD_NOT_ALLOWED` with `Allow`')
    expect(doc.paths['/health/live']).toBeUndefined()
    expect(doc.paths['/docs/json']).toBeUndefined()
  })

  it('documents nullable fields as type lists and the jersey number range', async () => {
    const doc = (await t.app.inject({ url: '/docs/json' })).json()
    const body =
      doc.paths['/teams/{id}/roster/{playerId}'].put.requestBody.content['application/json'].schema
    expect(body.additionalProperties).toBe(false)
    expect(body.properties.jerseyNumber).toMatchObject({
      type: ['integer', 'null'],
      minimum: 0,
      maximum: 99,
    })
    expect(body.properties.role).toMatchObject({ type: 'string', minLength: 1, maxLength: 20 })
  })
})

describe('before the service is ready', () => {
  let t: TestApp
  beforeAll(async () => {
    // Without migrate-on-boot the incident database (stamped 018) stays behind: never ready.
    t = await buildTestApp({
      template: 'incident',
      env: { MIGRATE_ON_BOOT: 'false' },
      waitReady: false,
    })
  })
  afterAll(() => t?.close())

  it('answers 503 with Retry-After on domain routes, but serves the document', async () => {
    expect(t.app.readiness.reason()).not.toBeNull()
    for (const url of ['/teams', '/players', '/teams/2/roster', '/teams/2/games', '/games/1']) {
      const res = await t.app.inject({ url, headers: AUTH })
      expectError(res, 503, /^the service is not ready/)
      expect(res.headers['retry-after']).toBeDefined()
    }
    const put = await t.app.inject({
      method: 'PUT',
      url: '/teams/2/roster/2',
      headers: AUTH,
      payload: { jerseyNumber: 23 },
    })
    expectError(put, 503)
    expect((await t.app.inject({ url: '/docs/json' })).statusCode).toBe(200)
  })
})
