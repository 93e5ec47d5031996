import { Ajv, type Options } from 'ajv'
import formatsPlugin from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv

/**
 * Two validators, as Fastify's docs suggest for per-part options: path params and
 * query strings arrive as text and are coerced to their schema types; a JSON body
 * already has types, so it is not coerced (`null` must not turn into `false`,
 * nor `123` into `"123"`).
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  // allErrors stays false: with true, a crafted body can make validation costly.
  const base: Options = { useDefaults: true, removeAdditional: false, allErrors: false }
  const coercing = addFormats(new Ajv({ ...base, coerceTypes: 'array' }))
  const strict = addFormats(new Ajv({ ...base, coerceTypes: false }))
  return ({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(schema as object) as ReturnType<
      FastifySchemaCompiler<unknown>
    >
}
