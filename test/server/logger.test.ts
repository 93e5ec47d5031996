import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger, loggedUrl } from '../../src/logger.js'
import { ADMIN_TOKEN, AUTH, buildTestApp, type TestApp } from '../helpers/app.js'

// The logger as src/server.ts builds it, writing into an array instead of stdout.
describe('request logging', () => {
  const lines: string[] = []
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({
      template: 'incident',
      logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
    })
  })
  afterAll(() => t?.close())

  it('writes one line per request with its outcome, and never the token', async () => {
    lines.length = 0
    const wrong = { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}x` }
    const calls = [
      { url: '/teams', headers: AUTH, status: 200 },
      { url: '/teams', headers: wrong, status: 401 },
      {
        url: `/teams?token=${ADMIN_TOKEN}`,
        logged: '/teams?[redacted]',
        headers: { authorization: `Basic ${ADMIN_TOKEN}` },
        status: 401,
      },
      {
        url: '/players?search=Jordan&teamId=1&limit=5&cursor=WzEsIkpvcmRhbiIsIk1pY2hhZWwiLDIzXQ',
        logged: '/players?search=[redacted]&teamId=1&limit=5&cursor=[redacted]',
        headers: AUTH,
        status: 200,
      },
      { url: '/teams/abc', headers: AUTH, status: 400 },
      { url: '/teams/999999/roster', headers: AUTH, status: 404 },
      { url: `/no/such/route/${'x'.repeat(200)}`, headers: AUTH, status: 404 },
      {
        url: '/players',
        method: 'POST' as const,
        headers: AUTH,
        payload: { nope: 1 },
        status: 400,
      },
    ]
    for (const { status, logged: _, ...call } of calls) {
      const res = await t.app.inject(call)
      expect(res.statusCode, `${call.url}`).toBe(status)
    }

    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    // One line per request, whatever its outcome: no "request rejected" or "Route … not
    // found" line beside the access line (a flood of bad requests would write two each).
    // (Lines of the request; a background line, e.g. of the health check, has no reqId.)
    expect(parsed.filter((l) => 'reqId' in l)).toHaveLength(calls.length)
    const perRequest = parsed.filter((l) => typeof l.req === 'object')
    expect(perRequest.map((l) => (l.res as { statusCode: number }).statusCode)).toEqual(
      calls.map((c) => c.status),
    )
    for (const [i, line] of perRequest.entries()) {
      expect(line).toMatchObject({
        level: 30,
        msg: 'request completed',
        req: { method: calls[i]?.method ?? 'GET', url: calls[i]?.logged ?? calls[i]?.url },
        reqId: expect.any(String),
        responseTime: expect.any(Number),
      })
      // Only these fields (JSON leaves out the undefined ones), never headers.
      expect(['host', 'method', 'remoteAddress', 'remotePort', 'url']).toEqual(
        expect.arrayContaining(Object.keys(line.req as object)),
      )
    }
    // A 4xx from the error handler says why in that line.
    expect(perRequest[4]?.rejected).toEqual({
      code: 'FST_ERR_VALIDATION',
      message: 'params/id must be integer',
    })
    expect(perRequest[5]?.rejected).toMatchObject({ message: 'team 999999 not found' })
    const text = lines.join('')
    expect(text).not.toContain(ADMIN_TOKEN)
    expect(text.toLowerCase()).not.toContain('authorization')
    expect(text).not.toContain('Bearer')
    // Neither a searched name nor the one a cursor holds (base64url of [1,"Jordan",…]).
    expect(text).not.toContain('Jordan')
    expect(text).not.toContain('WzEsIkpvcmRhbi')
  })
})

describe('loggedUrl', () => {
  it.each([
    ['/teams/3/roster', '/teams/3/roster'],
    ['/players?teamId=12&limit=100', '/players?teamId=12&limit=100'],
    ['/players?search=Ann%20Lee', '/players?search=[redacted]'],
    ['/players?teamId=Ann&limit=', '/players?teamId=[redacted]&limit=[redacted]'],
    ['/players?cursor=abc&search', '/players?cursor=[redacted]&search'],
    ['/players?Ann+Lee&te%61mId=1', '/players?[redacted]&[redacted]'],
    ['/players?&limit=5&', '/players?&limit=5&'],
    // A number followed or preceded by text is text: a name could follow the digits.
    ['/players?limit=5Ann&teamId=Ann5', '/players?limit=[redacted]&teamId=[redacted]'],
  ])('%s is logged as %s', (url, logged) => {
    expect(loggedUrl(url)).toBe(logged)
  })
})

describe('the err serializer', () => {
  it("drops pg-pool's err.client, also from nested and aggregated errors, and keeps the rest", () => {
    const lines: string[] = []
    const log = createLogger('info', { write: (line: string) => void lines.push(line) })
    const withClient = (message: string) =>
      Object.assign(new Error(message), {
        code: '57P01',
        detail: 'the detail',
        client: { host: 'db.internal', user: 'app', password: 'secret-pw' },
      })
    log.error({ err: withClient('top') }, 'one')
    log.error({ err: new AggregateError([withClient('inner')], 'all') }, 'two')
    log.error(
      { err: Object.assign(new Error('outer'), { original: withClient('nested') }) },
      'three',
    )
    expect(lines).toHaveLength(3)
    for (const line of lines) {
      expect(line).not.toContain('"client"')
      expect(line).not.toContain('secret-pw')
      expect(line).not.toContain('db.internal')
    }
    expect(JSON.parse(lines[0] as string).err).toMatchObject({
      code: '57P01',
      detail: 'the detail',
    })
    expect(JSON.parse(lines[1] as string).err.aggregateErrors[0]).toMatchObject({
      message: 'inner',
    })
  })
})
