import { createRequire } from 'node:module'
import type { FastifyError, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../lib/http-error.js'
import { isConnectionError, isSqlState } from '../migrate/errors.js'

// node:http through require(), not an ES import: importing a built-in as an ES module
// reads every one of its exports, and on Node 22 node:http's lazy WebSocket, CloseEvent
// and MessageEvent exports load undici: ~10 ms of boot and ~3.5 MiB resident that this
// service never uses.
const { STATUS_CODES } = createRequire(import.meta.url)('node:http') as typeof import('node:http')

/** SQLSTATEs a client can cause, and what they tell the client (never the SQL, table or constraint). */
const DATABASE_ERRORS: Record<string, { statusCode: number; message: string }> = {
  '23505': { statusCode: 409, message: 'conflicts with an existing record' },
  '23503': {
    statusCode: 409,
    message: 'refers to a record that does not exist or is still referenced',
  },
  '23502': { statusCode: 400, message: 'a required field is missing' },
  '23514': { statusCode: 400, message: 'a field is out of its allowed range' },
  '22001': { statusCode: 400, message: 'a field is too long' },
  '22003': { statusCode: 400, message: 'a number is out of range' },
  '22007': { statusCode: 400, message: 'a date or time is not valid' },
  '22008': { statusCode: 400, message: 'a date or time is out of range' },
  // RFC 3339 (the schema's date-time) allows offsets to ±23:59, PostgreSQL to ±15:59.
  '22009': { statusCode: 400, message: 'a time zone offset is out of range (at most ±15:59)' },
  '22P02': { statusCode: 400, message: 'a field has the wrong format' },
  '22021': { statusCode: 400, message: 'a field contains bytes that are not valid text' },
  '55P03': { statusCode: 503, message: 'the record is busy; try again' },
  '57014': { statusCode: 503, message: 'the database took too long to answer; try again' },
  '40001': { statusCode: 503, message: 'a concurrent change interfered; try again' },
  '40P01': { statusCode: 503, message: 'a concurrent change interfered; try again' },
}

const kRejected = Symbol('rejected')
type RejectedRequest = FastifyRequest & {
  [kRejected]?: { code: string | undefined; message: string }
}

/** Why a request was refused with a 4xx by the error handler, if it was. */
export function rejectionOf(request: FastifyRequest) {
  return (request as RejectedRequest)[kRejected]
}

/**
 * The one error handler: answers in Fastify's `{ statusCode, error, message }`
 * shape, maps database errors to 4xx/503 without leaking SQL, and hides the text
 * of every 5xx.
 */
export default fp(
  async (app) => {
    app.setErrorHandler((error: FastifyError & { code?: unknown }, request, reply) => {
      let statusCode = error.statusCode ?? 500
      let message = error.message
      let code = typeof error.code === 'string' ? error.code : undefined
      if (error instanceof HttpError && error.headers) reply.headers(error.headers)
      if (isConnectionError(error)) {
        statusCode = 503
        message = 'the database is unavailable; try again'
        code = 'DATABASE_UNAVAILABLE'
        reply.header('Retry-After', '5')
      } else if (error.statusCode === undefined && isSqlState(error.code)) {
        const known = DATABASE_ERRORS[error.code]
        statusCode = known?.statusCode ?? 500
        message = known?.message ?? 'Internal Server Error'
        code = known ? 'DATABASE_REJECTED' : undefined
        if (statusCode === 503) reply.header('Retry-After', '1')
      }
      if (statusCode >= 500) {
        request.log.error({ err: error }, 'request failed')
        if (statusCode === 500) message = 'Internal Server Error'
      } else {
        // Why, in the request's one access line (src/app.ts), not in a line of its own.
        ;(request as RejectedRequest)[kRejected] = { code, message }
      }
      const body: Record<string, unknown> = {
        statusCode,
        error: STATUS_CODES[statusCode] ?? 'Error',
        message,
      }
      if (code && statusCode < 500) body.code = code
      return reply.code(statusCode).type('application/json; charset=utf-8').send(body)
    })
  },
  { name: 'error-handler' },
)
