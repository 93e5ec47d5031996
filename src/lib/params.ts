import type { FastifyRequest } from 'fastify'
import { HttpError } from './http-error.js'

/**
 * preValidation: path ids must be plain decimal digits. The app's ajv coerces
 * with `Number()`, which would take `0x2`, `1e3`, ` 2` or `2.0` as ids; the
 * schema (int32 range) still runs after this.
 */
export async function decimalIdParams(request: FastifyRequest): Promise<void> {
  for (const [name, value] of Object.entries(request.params as Record<string, unknown>)) {
    if (typeof value !== 'string' || !/^[0-9]{1,10}$/.test(value)) {
      throw new HttpError(
        400,
        /^[0-9]+$/.test(String(value))
          ? `params/${name} must be <= 2147483647`
          : `params/${name} must be a positive integer`,
        'FST_ERR_VALIDATION',
      )
    }
  }
}

/**
 * preValidation for integer query parameters, for the same reason: `?teamId=0x1`,
 * `1e0` or ` 1` would be coerced to 1. A signed run of digits goes on to the schema,
 * which reports its range; anything else is refused as not an integer.
 */
export function decimalIntegerQuery(...names: string[]) {
  return async (request: FastifyRequest): Promise<void> => {
    const query = request.query as Record<string, unknown>
    for (const name of names) {
      const value = query[name]
      if (value !== undefined && (typeof value !== 'string' || !/^-?[0-9]+$/.test(value))) {
        throw new HttpError(400, `querystring/${name} must be integer`, 'FST_ERR_VALIDATION')
      }
    }
  }
}
