import { hash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../lib/http-error.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** True when the request carries the admin bearer token. */
    isAdmin(request: FastifyRequest): boolean
    /** An onRequest/preHandler hook that answers 401 unless the request carries the admin token. */
    requireAdmin(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void
  }
}

// One-shot hashing (no Hash object per request): it runs on every admin request.
const digest = (value: string) => hash('sha256', value, 'buffer')

/**
 * Bearer-token auth for admin routes. Both sides are hashed to equal-length
 * digests and compared with timingSafeEqual, so neither the token's content nor
 * its length leaks through timing.
 */
export default fp(
  async (app, opts: { adminToken: string }) => {
    const expected = digest(opts.adminToken)
    const isAdmin = (request: FastifyRequest) => {
      const header = request.headers.authorization
      if (typeof header !== 'string') return false
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
      return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected)
    }
    app.decorate('isAdmin', isAdmin)
    // A callback hook, not an async one: no promise per request on the hot path.
    app.decorate(
      'requireAdmin',
      (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
        if (isAdmin(request)) return done()
        done(
          new HttpError(401, 'a valid admin bearer token is required', 'UNAUTHORIZED', {
            'WWW-Authenticate': 'Bearer',
          }),
        )
      },
    )
  },
  { name: 'auth' },
)
