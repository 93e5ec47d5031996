import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../lib/http-error.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** True when the request carries the admin bearer token. */
    isAdmin(request: FastifyRequest): boolean
    /** A preHandler that answers 401 unless the request carries the admin token. */
    requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void>
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest()

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
    app.decorate('requireAdmin', async (request: FastifyRequest, reply: FastifyReply) => {
      if (isAdmin(request)) return
      reply.header('WWW-Authenticate', 'Bearer')
      throw new HttpError(401, 'a valid admin bearer token is required', 'UNAUTHORIZED')
    })
  },
  { name: 'auth' },
)
