import fp from 'fastify-plugin'
import FindMyWay from 'find-my-way'
import { HttpError } from '../lib/http-error.js'

const noop = () => {}
/** The order `Allow` lists methods in, whichever route was added first. */
const ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const rank = (method: string) => {
  const i = ORDER.indexOf(method)
  return i === -1 ? ORDER.length : i
}

/**
 * A path that exists with another method is a 405 with `Allow` (RFC 9110 §15.5.6), not
 * Fastify's 404 "Route POST:/health/ready not found", which reads as a wrong URL. The
 * routes are mirrored into a find-my-way router of their own (Fastify's is not public),
 * consulted only for requests that matched no route: the rest pay nothing. Register
 * before the routes (its onRoute hook sees only the routes added after it).
 */
export default fp(
  async (app, opts: { maxParamLength: number }) => {
    const router = FindMyWay({ maxParamLength: opts.maxParamLength })
    const methods: string[] = []
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) {
        // A route can be added twice (HEAD beside a GET with exposeHeadRoutes); once is enough.
        if (router.hasRoute(method as never, route.url)) continue
        router.on(method as never, route.url, noop)
        if (!methods.includes(method)) {
          methods.push(method)
          methods.sort((a, b) => rank(a) - rank(b))
        }
      }
    })
    app.setNotFoundHandler((request, reply) => {
      const { url, method } = request
      const path = url.split('?', 1)[0] ?? url
      const allowed = methods.filter((m) => m !== method && router.find(m as never, path) !== null)
      if (allowed.length > 0) {
        reply.header('Allow', allowed.join(', '))
        throw new HttpError(
          405,
          `${method} is not allowed here; this path takes ${allowed.join(', ')}`,
          'METHOD_NOT_ALLOWED',
        )
      }
      // Fastify's own 404, word for word.
      return reply.code(404).send({
        message: `Route ${method}:${url} not found`,
        error: 'Not Found',
        statusCode: 404,
      })
    })
  },
  { name: 'method-not-allowed' },
)
