import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { BAD_IDS, expectError, IMPOSSIBLE_IDS, rowCounts } from './domain-helpers.js'

interface Game {
  id: number
  teamId: number
  opponent: string
  startsAt: string
  location: string | null
  isHome: boolean
  teamScore: number | null
  opponentScore: number | null
}

describe('games on the migrated incident database', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  const schedule = async (teamId: number): Promise<Game[]> => {
    const res = await t.app.inject({ url: `/teams/${teamId}/games`, headers: AUTH })
    expect(res.statusCode, res.body).toBe(200)
    return res.json().items
  }
  const post = (
    teamId: number | string,
    payload: unknown,
    headers: Record<string, string> = AUTH,
  ) =>
    t.app.inject({
      method: 'POST',
      url: `/teams/${teamId}/games`,
      headers,
      payload: payload as object,
    })
  const patch = (id: number | string, payload: unknown, headers: Record<string, string> = AUTH) =>
    t.app.inject({ method: 'PATCH', url: `/games/${id}`, headers, payload: payload as object })

  describe('GET /teams/:id/games', () => {
    it('answers the Hawks’ schedule with scores, by start time', async () => {
      const games = await schedule(2)
      expect(games[0]).toEqual({
        id: 1,
        teamId: 2,
        opponent: 'Eastside Rams',
        startsAt: '2025-09-02T18:00:00.000Z',
        location: 'Westside Gym',
        isHome: true,
        teamScore: 64,
        opponentScore: 37,
      })
      expect(games.every((g) => g.teamId === 2)).toBe(true)
      const times = games.map((g) => Date.parse(g.startsAt))
      expect(times).toEqual([...times].sort((a, b) => a - b))
      expect(games.find((g) => g.id === 21)).toMatchObject({ teamScore: null, opponentScore: null })
    })

    it('puts a game scheduled earlier first, whatever its id', async () => {
      const res = await post(2, { opponent: 'Early Birds', startsAt: '2025-08-01T10:00:00Z' })
      expect(res.statusCode).toBe(201)
      expect((await schedule(2))[0]?.id).toBe(res.json().id)
    })

    it('answers an empty schedule for a team without games', async () => {
      const team = await t.app.inject({
        method: 'POST',
        url: '/teams',
        headers: AUTH,
        payload: { name: 'No Games', ageGroup: 'U8', season: '2026-27' },
      })
      expect(await schedule(team.json().id)).toEqual([])
    })

    it('answers 404 for an unknown team, 400 for bad ids, 401 without the token', async () => {
      expectError(
        await t.app.inject({ url: '/teams/999/games', headers: AUTH }),
        404,
        'team 999 not found',
      )
      for (const id of BAD_IDS) {
        expectError(await t.app.inject({ url: `/teams/${id}/games`, headers: AUTH }), 400)
      }
      for (const id of IMPOSSIBLE_IDS) {
        expectError(
          await t.app.inject({ url: `/teams/${id}/games`, headers: AUTH }),
          404,
          `team ${id} not found`,
        )
      }
      expectError(await t.app.inject({ url: '/teams/2/games' }), 401)
    })
  })

  describe('POST /teams/:id/games', () => {
    it('schedules a game with defaults (home, no location, no scores), in UTC', async () => {
      const res = await post(3, {
        opponent: 'Northside Hornets',
        startsAt: '2026-01-10T19:30:00+01:00',
      })
      expect(res.statusCode, res.body).toBe(201)
      expect(res.json()).toEqual({
        id: expect.any(Number),
        teamId: 3,
        opponent: 'Northside Hornets',
        startsAt: '2026-01-10T18:30:00.000Z',
        location: null,
        isHome: true,
        teamScore: null,
        opponentScore: null,
      })
      expect(await schedule(3)).toContainEqual(res.json())
    })

    it('keeps a start time to the millisecond, as it answers it, on create and on reschedule', async () => {
      const stored = async (id: number) => {
        const { rows } = await t.app.pg.query<{ text: string }>(
          `SELECT to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS text
             FROM games WHERE id = $1`,
          [id],
        )
        return rows[0]?.text
      }
      const res = await post(3, {
        opponent: 'Precise',
        startsAt: '2026-01-10T19:30:00.123456+01:00',
      })
      expect(res.statusCode, res.body).toBe(201)
      expect(res.json().startsAt).toBe('2026-01-10T18:30:00.123Z')
      expect(await stored(res.json().id)).toBe('2026-01-10T18:30:00.123000')
      const moved = await patch(res.json().id, { startsAt: '2026-01-11T08:00:00.98765Z' })
      expect(moved.json().startsAt).toBe('2026-01-11T08:00:00.987Z')
      expect(await stored(res.json().id)).toBe('2026-01-11T08:00:00.987000')
    })

    it('takes every optional field', async () => {
      const payload = {
        opponent: 'Southside Suns',
        startsAt: '2025-09-20T17:00:00Z',
        location: 'Southside Arena',
        isHome: false,
        teamScore: 0,
        opponentScore: 999,
      }
      const res = await post(4, payload)
      expect(res.statusCode).toBe(201)
      expect(res.json()).toEqual({
        ...payload,
        id: expect.any(Number),
        teamId: 4,
        startsAt: '2025-09-20T17:00:00.000Z',
      })
    })

    it.each([
      ['no opponent', { startsAt: '2026-01-10T19:30:00Z' }],
      ['no start time', { opponent: 'X' }],
      ['a start time without a zone', { opponent: 'X', startsAt: '2026-01-10T19:30:00' }],
      ['a date only', { opponent: 'X', startsAt: '2026-01-10' }],
      ['an impossible time', { opponent: 'X', startsAt: '2026-02-30T19:30:00Z' }],
      ['year 0', { opponent: 'X', startsAt: '0000-01-01T00:00:00Z' }],
      // RFC 3339 allows it; PostgreSQL would store the next day (2026-01-01T00:00:00Z).
      ['a leap second', { opponent: 'X', startsAt: '2025-12-31T23:59:60Z' }],
      ['a leap second at +01:00', { opponent: 'X', startsAt: '2026-01-01T00:59:60.5+01:00' }],
      ['a start time as a number', { opponent: 'X', startsAt: 1767000000000 }],
      ['a score over 999', { opponent: 'X', startsAt: '2026-01-10T19:30:00Z', teamScore: 1000 }],
      ['a negative score', { opponent: 'X', startsAt: '2026-01-10T19:30:00Z', opponentScore: -1 }],
      ['a score as a string', { opponent: 'X', startsAt: '2026-01-10T19:30:00Z', teamScore: '3' }],
      ['isHome null', { opponent: 'X', startsAt: '2026-01-10T19:30:00Z', isHome: null }],
      [
        'an opponent over 200 characters',
        { opponent: 'o'.repeat(201), startsAt: '2026-01-10T19:30:00Z' },
      ],
      ['an unknown property', { opponent: 'X', startsAt: '2026-01-10T19:30:00Z', teamId: 3 }],
      // RFC 3339 allows offsets to ±23:59, PostgreSQL ±15:59.
      ['a zone offset of +16:00', { opponent: 'X', startsAt: '2026-01-10T19:30:00+16:00' }],
    ])('answers 400 for %s and creates nothing', async (_what, payload) => {
      const before = await rowCounts(t.app)
      expectError(await post(3, payload), 400)
      expect(await rowCounts(t.app)).toEqual(before)
    })

    it('answers 404 for an unknown team, 400 for a bad id, 401 without the token', async () => {
      const payload = { opponent: 'X', startsAt: '2026-01-10T19:30:00Z' }
      const before = await rowCounts(t.app)
      expectError(await post(999, payload), 404, 'team 999 not found')
      expectError(await post('x', payload), 400)
      expectError(await post(3, payload, {}), 401)
      expect(await rowCounts(t.app)).toEqual(before)
    })
  })

  describe('GET /games/:id', () => {
    it('answers one game', async () => {
      const res = await t.app.inject({ url: '/games/2', headers: AUTH })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({
        id: 2,
        teamId: 3,
        opponent: 'Eastside Jets',
        isHome: false,
      })
    })

    it('answers 404 for an unknown game, 400 for a bad id, 401 without the token', async () => {
      expectError(
        await t.app.inject({ url: '/games/9999', headers: AUTH }),
        404,
        'game 9999 not found',
      )
      expectError(await t.app.inject({ url: '/games/1.5', headers: AUTH }), 400)
      expectError(await t.app.inject({ url: '/games/2' }), 401)
    })
  })

  describe('PATCH /games/:id', () => {
    it('records the final score and changes nothing else', async () => {
      const before = (await t.app.inject({ url: '/games/21', headers: AUTH })).json()
      const res = await patch(21, { teamScore: 51, opponentScore: 48 })
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json()).toEqual({ ...before, teamScore: 51, opponentScore: 48 })
      expect((await schedule(2)).find((g) => g.id === 21)).toEqual(res.json())
    })

    it('reschedules, moves and clears a score with null', async () => {
      const res = await patch(21, {
        startsAt: '2025-11-29T16:00:00-05:00',
        location: null,
        isHome: false,
        teamScore: null,
      })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({
        startsAt: '2025-11-29T21:00:00.000Z',
        location: null,
        isHome: false,
        teamScore: null,
        opponentScore: 48,
      })
    })

    it.each([
      ['an empty body', {}],
      ['an unknown property', { winner: 'us' }],
      ['a null opponent', { opponent: null }],
      ['a null start time', { startsAt: null }],
      ['a fractional score', { teamScore: 10.5 }],
      ['a moved team', { teamId: 1 }],
      ['a zone offset of -23:59', { startsAt: '2026-01-10T19:30:00-23:59' }],
    ])('answers 400 for %s and changes nothing', async (_what, payload) => {
      const before = (await t.app.inject({ url: '/games/3', headers: AUTH })).json()
      expectError(await patch(3, payload), 400)
      expect((await t.app.inject({ url: '/games/3', headers: AUTH })).json()).toEqual(before)
    })

    it('answers 404 for an unknown game, 400 for a bad id, 401 without the token', async () => {
      expectError(await patch(9999, { teamScore: 1 }), 404, 'game 9999 not found')
      expectError(await patch('abc', { teamScore: 1 }), 400)
      expectError(await patch(3, { teamScore: 1 }, {}), 401)
    })
  })

  describe('DELETE /games/:id', () => {
    it('deletes the game', async () => {
      const created = await post(5, { opponent: 'Cancelled', startsAt: '2026-03-01T12:00:00Z' })
      const { id } = created.json()
      const res = await t.app.inject({ method: 'DELETE', url: `/games/${id}`, headers: AUTH })
      expect(res.statusCode).toBe(204)
      expect((await schedule(5)).some((g) => g.id === id)).toBe(false)
      expectError(await t.app.inject({ method: 'DELETE', url: `/games/${id}`, headers: AUTH }), 404)
    })

    it('answers 400 for a bad id and 401 without the token', async () => {
      expectError(await t.app.inject({ method: 'DELETE', url: '/games/0', headers: AUTH }), 404)
      expectError(await t.app.inject({ method: 'DELETE', url: '/games/1' }), 401)
      expect((await t.app.inject({ url: '/games/1', headers: AUTH })).statusCode).toBe(200)
    })
  })
})
