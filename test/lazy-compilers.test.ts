import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { LazyCompilers } from '../src/lib/validators.js'

// No database here: this is about Fastify's compilers, not data.
function build() {
  const compilers = new LazyCompilers()
  const app = Fastify({
    schemaController: { compilersFactory: { buildSerializer: compilers.serializerFactory() } },
  })
  app.setValidatorCompiler(compilers.validatorCompiler())
  app.post(
    '/things/:id',
    {
      schema: {
        params: {
          type: 'object',
          properties: { id: { type: 'integer' } },
          required: ['id'],
        },
        body: {
          type: 'object',
          properties: { flag: { type: 'boolean' }, at: { type: 'string', format: 'date' } },
          required: ['flag'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { id: { type: 'integer' }, flag: { type: 'boolean' } },
          },
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: number }
      const { flag } = request.body as { flag: boolean }
      return { id, flag, secret: 'left out by the response schema' }
    },
  )
  return { app, compilers }
}

describe('route schemas compiled on first use', () => {
  it('compiles nothing at ready, then validates and serializes as eager compilation would', async () => {
    const { app, compilers } = build()
    await app.ready()
    expect(compilers.pending).toBe(3) // params, body, the 200 response

    const ok = await app.inject({ method: 'POST', url: '/things/7', payload: { flag: true } })
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toEqual({ id: 7, flag: true }) // params coerced, extra field dropped
    expect(compilers.pending).toBe(0)

    // Body not coerced: `null` is not `false`, "true" is not `true`.
    for (const flag of [null, 'true']) {
      const bad = await app.inject({ method: 'POST', url: '/things/7', payload: { flag } })
      expect(bad.statusCode).toBe(400)
      expect(bad.json()).toMatchObject({
        statusCode: 400,
        error: 'Bad Request',
        message: 'body/flag must be boolean',
      })
    }
    const badDate = await app.inject({
      method: 'POST',
      url: '/things/7',
      payload: { flag: true, at: '2026-02-30' },
    })
    expect(badDate.json().message).toBe('body/at must match format "date"')
    const badParam = await app.inject({ method: 'POST', url: '/things/x', payload: { flag: true } })
    expect(badParam.json().message).toBe('params/id must be integer')
    await app.close()
  })

  it('warm() compiles everything left, so no request pays for it', async () => {
    const { app, compilers } = build()
    await app.ready()
    expect(compilers.pending).toBeGreaterThan(0)
    await compilers.warm()
    expect(compilers.pending).toBe(0)
    const ok = await app.inject({ method: 'POST', url: '/things/1', payload: { flag: false } })
    expect(ok.json()).toEqual({ id: 1, flag: false })
    await app.close()
  })

  it('reports a schema that does not compile from warm(), not at boot', async () => {
    const compilers = new LazyCompilers()
    const app = Fastify()
    app.setValidatorCompiler(compilers.validatorCompiler())
    app.post('/broken', { schema: { body: { type: 'no-such-type' } } }, async () => 'x')
    await app.ready()
    await expect(compilers.warm()).rejects.toThrow(/no-such-type|type/)
    await app.close()
  })
})
