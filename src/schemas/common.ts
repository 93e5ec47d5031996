import { type Static, type TInteger, type TString, type TUnsafe, Type } from '@sinclair/typebox'

/** The largest id PostgreSQL's `integer` holds; anything above is a 400, never a database error. */
export const MAX_ID = 2_147_483_647

/** A positive int32 id (path, query or body). */
export const Id = (options: { description?: string } = {}) =>
  Type.Integer({ minimum: 1, maximum: MAX_ID, ...options })

/**
 * `T | null` as a JSON-schema type list, not `anyOf`: the app validates with
 * `coerceTypes`, and ajv coerces `null` to `0`/`""`/`false` inside the first
 * `anyOf` branch, so a client clearing a field would silently write a value.
 */
export const Nullable = <T extends TInteger | TString>(schema: T): TUnsafe<Static<T> | null> => {
  const { type, ...rest } = schema as unknown as Record<string, unknown>
  return Type.Unsafe<Static<T> | null>({ ...rest, type: [type, 'null'] })
}

/** Refuses NUL (PostgreSQL text cannot hold it) and requires something other than whitespace. */
const NOT_BLANK = '^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$'
const NO_NUL = '^[^\\u0000]*$'

/** A required, non-blank text that fits a `varchar(maxLength)` column. */
export const Name = (maxLength: number, options: { description?: string } = {}) =>
  Type.String({ minLength: 1, maxLength, pattern: NOT_BLANK, ...options })

/** Free text up to `maxLength` characters (may be empty). */
export const Text = (maxLength: number, options: { description?: string } = {}) =>
  Type.String({ maxLength, pattern: NO_NUL, ...options })

/** Fastify's error shape; the error handler adds `code` on 4xx. */
export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    code: Type.Optional(Type.String()),
  },
  { description: 'An error, in Fastify’s shape' },
)

type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 415 | 503

/**
 * Error responses for a route. 401 (admin token) and 503 (the readiness gate)
 * apply to every domain route; 413/415 to routes that take a body.
 */
export function errorResponses<const S extends ErrorStatus>(
  ...statuses: S[]
): Record<S | 401 | 503, typeof ErrorResponse> {
  const out = {} as Record<S | 401 | 503, typeof ErrorResponse>
  for (const status of [...statuses, 401, 503] as (S | 401 | 503)[]) out[status] = ErrorResponse
  return out
}

export const NoContent = Type.Null({ description: 'No content' })

/** The error statuses of a route that reads a JSON body. */
export const BODY_ERRORS = [400, 413, 415] as const

/**
 * An id in a path: any integer. One no row can have is a 404, not a 400 (CONTRACT.md: "an
 * unknown one a 404"); the path-ids plugin answers it before any query.
 */
export const PathId = (options: { description?: string } = {}) => Type.Integer(options)

/** Parameters of `/<things>/:id`. */
export const IdParams = Type.Object({ id: PathId() })
export type IdParams = Static<typeof IdParams>
