import { Ajv } from 'ajv'
import formatsPlugin from 'ajv-formats'
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

  it('are valid JSON Schema (the service skips this check at run time)', () => {
    const ajv = new Ajv({ strict: false })
    ;(formatsPlugin as unknown as (a: Ajv) => Ajv)(ajv)
    const { schemas } = t.app.routeSchemas
    // Params, query strings and bodies, and every response schema of every route.
    expect(schemas.length).toBeGreaterThan(40)
    const invalid = schemas.filter((schema) => !ajv.validateSchema(schema as object))
    expect(invalid).toEqual([])
    // The check is live: a wrong keyword value fails it.
    expect(ajv.validateSchema({ type: 'string', minLength: 'three' })).toBe(false)
  })
})
