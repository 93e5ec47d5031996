import type { preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { notFound } from '../lib/http-error.js'
import { MAX_ID } from '../schemas/common.js'

/**
 * CONTRACT.md: "Ids are integers; a non-integer id is a 400, an unknown one a 404." Path ids
 * are validated as integers only, and one that no row can have (below 1, above PostgreSQL's
 * `integer`) is answered 404 here, naming what the path names, before any query: `/teams/0`
 * is an unknown team, not bad input. Runs after authentication and validation. The 404
 * names the id as the client wrote it.
 */
export default fp(
  async (app) => {
    app.addHook('onRoute', (route) => {
      const ids = pathIds(route.url)
      if (ids.length === 0) return
      const segments = route.url.split('/')
      const check: preHandlerHookHandler = (request, _reply, done) => {
        const params = request.params as Record<string, unknown>
        for (const [param, thing] of ids) {
          const id = params[param]
          if (typeof id === 'number' && (id < 1 || id > MAX_ID)) {
            // Named as sent, read back from the URL (validation made the param a number, and
            // `99999999999999999999999` would read `1e+23`, `-0` read `0`). Only here, on the
            // 404: nothing is kept per request. Validation let only an integer through.
            const sent = sentSegment(request.url, segments.indexOf(`:${param}`))
            return done(notFound(`${thing} ${sent ?? id}`))
          }
        }
        done()
      }
      route.preHandler = [
        check,
        ...(route.preHandler === undefined ? [] : [route.preHandler].flat()),
      ]
    })
  },
  { name: 'path-ids' },
)

/** Segment `index` of a request URL's path, decoded; null when there is none or it is not an integer. */
function sentSegment(url: string, index: number): string | null {
  const path = url.split('?', 1)[0] ?? ''
  try {
    const segment = decodeURIComponent(path.split('/')[index] ?? '')
    return /^[+-]?\d+$/.test(segment) ? segment : null
  } catch {
    return null
  }
}

/**
 * The id parameters of a route and what each names: `/teams/:id/roster/:playerId` gives
 * `[['id', 'team'], ['playerId', 'player']]` (`:id` takes the segment before it, singular).
 */
export function pathIds(url: string): Array<[string, string]> {
  const segments = url.split('/')
  const ids: Array<[string, string]> = []
  segments.forEach((segment, i) => {
    if (!segment.startsWith(':')) return
    const param = segment.slice(1)
    if (param === 'id') {
      const before = segments[i - 1] ?? ''
      if (before !== '' && !before.startsWith(':')) ids.push([param, before.replace(/s$/, '')])
    } else if (/^[a-z]+Id$/.test(param)) {
      ids.push([param, param.slice(0, -2)])
    }
  })
  return ids
}
