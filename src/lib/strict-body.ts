import type { TObject } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { HttpError } from './http-error.js'

const jsonType = (value: unknown): string => {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

const accepts = (allowed: string[], value: unknown): boolean => {
  const actual = jsonType(value)
  if (allowed.includes(actual)) return true
  return actual === 'number' && allowed.includes('integer')
}

/**
 * preValidation for a flat JSON body: each known property must already have a
 * JSON type its schema allows. The app's ajv runs with `coerceTypes` (for query
 * strings), which would otherwise accept `"isActive": null` as `false` or
 * `"name": 123` as `"123"`. Everything else (ranges, formats, lengths, unknown
 * properties) is left to the schema, which then has nothing to coerce.
 */
export function strictBodyTypes(schema: TObject) {
  const types = Object.entries(schema.properties).map(([name, property]) => {
    const type = (property as { type?: unknown }).type
    return [name, Array.isArray(type) ? type.map(String) : [String(type)]] as const
  })
  return async (request: FastifyRequest): Promise<void> => {
    const body = request.body
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return
    for (const [name, allowed] of types) {
      if (!Object.hasOwn(body, name)) continue
      const value = (body as Record<string, unknown>)[name]
      if (!accepts(allowed, value)) {
        throw new HttpError(400, `body/${name} must be ${allowed.join(',')}`, 'FST_ERR_VALIDATION')
      }
    }
  }
}
