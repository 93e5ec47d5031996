import { STATUS_CODES } from 'node:http'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { rowCounts } from '../routes/domain-helpers.js'

/**
 * Hostile requests to every domain route: wrong types, huge and negative
 * numbers, SQL fragments, unicode, deep and broken JSON, wrong content types,
 * missing or wrong tokens. Whatever comes in: no 5xx, every error in Fastify's
 * shape, no SQL or schema names in a message, and the domain tables change only
 * through requests answered 2xx.
 */

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS'

const ROUTES: { method: Method; path: string; body?: Record<string, unknown> }[] = [
  { method: 'GET', path: '/teams' },
  { method: 'POST', path: '/teams', body: { name: 'Hostile', ageGroup: 'U9', season: '2026' } },
  { method: 'GET', path: '/teams/:id' },
  { method: 'PATCH', path: '/teams/:id', body: { name: 'Renamed' } },
  { method: 'DELETE', path: '/teams/:id' },
  { method: 'GET', path: '/teams/:id/roster' },
  { method: 'PUT', path: '/teams/:id/roster/:playerId', body: { jerseyNumber: 23 } },
  { method: 'DELETE', path: '/teams/:id/roster/:playerId' },
  { method: 'GET', path: '/players' },
  { method: 'POST', path: '/players', body: { firstName: 'Hos', lastName: 'Tile' } },
  { method: 'GET', path: '/players/:id' },
  { method: 'PATCH', path: '/players/:id', body: { customNotes: 'n' } },
  { method: 'DELETE', path: '/players/:id' },
  { method: 'GET', path: '/teams/:id/games' },
  {
    method: 'POST',
    path: '/teams/:id/games',
    body: { opponent: 'Rams', startsAt: '2026-01-01T10:00:00Z' },
  },
  { method: 'GET', path: '/games/:id' },
  { method: 'PATCH', path: '/games/:id', body: { teamScore: 10 } },
  { method: 'DELETE', path: '/games/:id' },
]

const FIELDS = [
  'name',
  'ageGroup',
  'season',
  'isActive',
  'headCoachId',
  'firstName',
  'lastName',
  'birthDate',
  'position',
  'customNotes',
  'jerseyNumber',
  'role',
  'opponent',
  'startsAt',
  'location',
  'isHome',
  'teamScore',
  'opponentScore',
  'id',
  'teamId',
  '__proto__',
  'constructor',
]

const SQL_FRAGMENTS = [
  "'; DROP TABLE players; --",
  "1' OR '1'='1",
  '1 OR 1=1',
  "Robert'); DELETE FROM teams;--",
  'SELECT pg_sleep(10)',
  '$1',
  '%',
  '_',
  '\\',
  "O'Brien",
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\u202e\u0000',
  '😀🏀',
  'ｓｅｌｅｃｔ',
  'null',
  '__proto__',
  'captain',
  'player',
  '2025-02-29',
  '2024-02-29',
  '0000-01-01',
  '2026-01-01T10:00:00Z',
  '2026-01-01T10:00:00',
  '99999-01-01T00:00:00Z',
  ' ',
]

const hostileString = fc.oneof(
  fc.constantFrom(...SQL_FRAGMENTS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer({ min: 19, max: 260 }).map((n) => 'x'.repeat(n)),
  fc.constant('y'.repeat(20_000)),
)

const hostileNumber = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1,
    23,
    99,
    100,
    999,
    1000,
    32_767,
    32_768,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 53,
    -(2 ** 53),
    1e308,
    -1e308,
    5e-324,
    0.5,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
)

const scalar = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null))
const hostileValue = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), scalar, { maxKeys: 3 }) },
)

const idSegment = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 70 }).map(String) },
  {
    weight: 4,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '999',
          '2147483647',
          '2147483648',
          '4294967296',
          '0',
          '-1',
          '1.5',
          '1.0',
          '1e3',
          '0x10',
          'abc',
          "1'--",
          '1;DROP TABLE teams',
          '1 OR 1=1',
          '٣',
          '１',
          ' 1',
          'NaN',
          'Infinity',
          '9'.repeat(40),
          'null',
        ),
        fc.string({ maxLength: 20 }),
      )
      .map(encodeURIComponent),
  },
  { weight: 1, arbitrary: fc.constantFrom('%00', '%2e%2e', '..', '%ZZ', '9'.repeat(250)) },
)

const queryString = fc
  .array(
    fc.tuple(
      fc.constantFrom('teamId', 'search', 'limit', 'cursor', 'junk', 'limit[]', '__proto__'),
      fc.oneof(
        fc.integer({ min: -5, max: 150 }).map(String),
        hostileString,
        fc.constantFrom('WzEsImEiLCJiIiwxXQ', 'WzEsIkEiLCJCIiwtMV0', '', '1e3', '0x1'),
      ),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => {
    const params = new URLSearchParams()
    for (const [k, v] of pairs) params.append(k, v.replace(/[\ud800-\udfff]/g, ''))
    const s = params.toString()
    return s ? `?${s}` : ''
  })

const deep = (n: number, open: string, close: string, inner = '1') =>
  `${open.repeat(n)}${inner}${close.repeat(n)}`

const rawBody = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '{"name":',
    '{"name": "a",}',
    "{'name': 'a'}",
    'null',
    'true',
    '"string"',
    '1e999',
    '[]',
    '{}',
    '\ufeff{"name":"a"}',
    '{"__proto__": {"isAdmin": true}}',
    '{"constructor": {"prototype": {"x": 1}}}',
    '{"jerseyNumber": 23, "jerseyNumber": "23"}',
    'x'.repeat(70_000),
    deep(5_000, '[', ']'),
    deep(30_000, '[', ']'),
    deep(3_000, '{"a":', '}'),
    deep(20_000, '{"a":', '}'),
  ),
  fc.anything({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'undefined'),
)

const contentType = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/json; charset=utf-16',
  'application/vnd.api+json',
  undefined,
)

const authHeader = fc.oneof(
  { weight: 8, arbitrary: fc.constant(AUTH.authorization) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(undefined, 'Bearer', 'Bearer wrong', `Basic ${AUTH.authorization}`),
  },
)

interface HostileRequest {
  method: Method
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
}

const hostileRequest: fc.Arbitrary<HostileRequest> = fc
  .record({
    route: fc.constantFrom(...ROUTES),
    method: fc.option(
      fc.constantFrom<Method>('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
      {
        freq: 8,
        nil: undefined,
      },
    ),
    id: idSegment,
    playerId: idSegment,
    query: queryString,
    body: fc.oneof(
      // A valid body with some fields replaced: gets past validation often, reaching the database.
      {
        weight: 4,
        arbitrary: fc.dictionary(fc.constantFrom(...FIELDS), hostileValue, { maxKeys: 3 }),
      },
      { weight: 2, arbitrary: rawBody },
      {
        weight: 1,
        arbitrary: fc.constant(Buffer.from([0xff, 0xfe, 0x7b, 0x22, 0xc3, 0x28, 0x7d])),
      },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    contentType,
    authorization: authHeader,
  })
  .map(({ route, method, id, playerId, query, body, contentType, authorization }) => {
    const url = route.path.replace(':id', id).replace(':playerId', playerId) + query
    const headers: Record<string, string> = {}
    if (authorization !== undefined) headers.authorization = authorization
    let payload: string | Buffer | undefined
    if (body === undefined) payload = undefined
    else if (typeof body === 'string' || Buffer.isBuffer(body)) payload = body
    else payload = JSON.stringify({ ...route.body, ...body })
    if (payload !== undefined && contentType !== undefined) headers['content-type'] = contentType
    return {
      method: method ?? route.method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload }),
    }
  })

/** Words that would mean SQL, a table or a constraint reached the client. */
const LEAK =
  /\b(select\b[\s\S]*\bfrom|insert\s+into|delete\s+from|update\s+\w+\s+set|drop\s+table|violates|constraint|relation|column|syntax error|sqlstate|duplicate key|pg_\w+|teams|players|player_teams|games|coaches|ux_\w+|\w+_fkey|\w+_pkey|\w+_check|smallint|varchar|for type)\b/i

/** Fastify's router messages that quote the request URL and nothing else. */
const URL_ECHOES = [
  /^Route [A-Z]+:.* not found$/s,
  /^'.*' is exceeding the max param length$/s,
  /^'.*' is not a valid url component$/s,
]

describe('hostile requests to every domain route', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it('never answer 5xx, answer errors in Fastify’s shape, leak nothing, write only on 2xx', async () => {
    let counts = await rowCounts(t.app)
    let successes = 0
    await fc.assert(
      fc.asyncProperty(hostileRequest, async (req) => {
        const res = await t.app.inject(req)
        const where = `${req.method} ${req.url} -> ${res.statusCode} ${res.body.slice(0, 300)}`
        expect(res.statusCode, where).toBeLessThan(500)

        if (res.statusCode >= 400 && req.method !== 'HEAD') {
          expect(res.headers['content-type'], where).toMatch(/^application\/json/)
          const body = res.json()
          expect(body.statusCode, where).toBe(res.statusCode)
          expect(body.error, where).toBe(STATUS_CODES[res.statusCode])
          expect(typeof body.message, where).toBe('string')
          // Router errors quote the (normalised) URL they were given: the client's own text.
          const message = URL_ECHOES.some((echo) => echo.test(body.message)) ? '' : body.message
          expect(message, where).not.toMatch(LEAK)
        }

        const now = await rowCounts(t.app)
        if (res.statusCode >= 200 && res.statusCode < 300) {
          successes++
          counts = now
        } else {
          expect(now, where).toEqual(counts)
        }
      }),
      { numRuns: 600, endOnFailure: true },
    )
    // The generator reaches the database, not only the validator.
    expect(successes).toBeGreaterThan(20)

    const { rows } = await t.app.pg.query(
      `SELECT team_id, jersey_number FROM player_teams WHERE jersey_number IS NOT NULL
        GROUP BY team_id, jersey_number HAVING count(*) > 1`,
    )
    expect(rows).toEqual([])
  })
})

describe('concurrent roster writes', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it('keep jersey numbers unique per team, answering only 2xx, 400, 404 or 409', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            team: fc.integer({ min: 1, max: 6 }),
            player: fc.integer({ min: 1, max: 62 }),
            jerseyNumber: fc.oneof(fc.integer({ min: -2, max: 101 }), fc.constant(null)),
            role: fc.constantFrom('player', 'captain', 'assistant', 'coach', undefined),
          }),
          { minLength: 2, maxLength: 8 },
        ),
        async (writes) => {
          const results = await Promise.all(
            writes.map((w) =>
              t.app.inject({
                method: 'PUT',
                url: `/teams/${w.team}/roster/${w.player}`,
                headers: AUTH,
                payload: { jerseyNumber: w.jerseyNumber, ...(w.role ? { role: w.role } : {}) },
              }),
            ),
          )
          for (const res of results) {
            expect([200, 201, 400, 404, 409], res.body).toContain(res.statusCode)
          }
          const { rows } = await t.app.pg.query(
            `SELECT team_id, jersey_number FROM player_teams WHERE jersey_number IS NOT NULL
              GROUP BY team_id, jersey_number HAVING count(*) > 1`,
          )
          expect(rows).toEqual([])
        },
      ),
      { numRuns: 40, endOnFailure: true },
    )
  })
})
