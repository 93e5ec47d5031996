import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { BAD_IDS, expectError, IMPOSSIBLE_IDS, rowCounts } from './domain-helpers.js'

interface Player {
  id: number
  firstName: string
  lastName: string
  birthDate: string | null
  position: string | null
  customNotes: string | null
  teams: { teamId: number; jerseyNumber: number | null; role: string }[]
}

describe('/players on the migrated incident database', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  const list = async (query: string) => {
    const res = await t.app.inject({ url: `/players?${query}`, headers: AUTH })
    expect(res.statusCode, res.body).toBe(200)
    return res.json() as { items: Player[]; nextCursor: string | null }
  }
  /** Every page of a listing, following nextCursor. */
  const all = async (query: string, limit: number) => {
    const pages: Player[][] = []
    let cursor: string | null = null
    do {
      const q = `${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
      const page = await list(q)
      expect(page.items.length).toBeLessThanOrEqual(limit)
      pages.push(page.items)
      cursor = page.nextCursor
    } while (cursor !== null && pages.length < 100)
    return pages
  }
  const create = async (payload: Record<string, unknown>) => {
    const res = await t.app.inject({ method: 'POST', url: '/players', headers: AUTH, payload })
    expect(res.statusCode, res.body).toBe(201)
    return res.json() as Player
  }
  const databaseOrder = async (where = 'true', values: unknown[] = []) => {
    const { rows } = await t.app.pg.query<{ id: number }>(
      `SELECT id FROM players WHERE ${where} ORDER BY last_name, first_name, id`,
      values,
    )
    return rows.map((r) => r.id)
  }

  describe('GET /players', () => {
    it('answers a first page of 20 with a cursor, each player in the contract shape', async () => {
      const page = await list('')
      expect(page.items).toHaveLength(20)
      expect(typeof page.nextCursor).toBe('string')
      for (const p of page.items) {
        expect(Object.keys(p).sort()).toEqual(
          ['birthDate', 'customNotes', 'firstName', 'id', 'lastName', 'position', 'teams'].sort(),
        )
      }
    })

    it('walks every player exactly once, in name order, ending with a null cursor', async () => {
      const pages = await all('', 7)
      const ids = pages.flat().map((p) => p.id)
      expect(new Set(ids).size).toBe(ids.length)
      expect(ids).toEqual(await databaseOrder())
      expect(pages.at(-1)?.length).toBeGreaterThan(0)
    })

    it('answers a null cursor when the page holds the last player', async () => {
      const total = (await databaseOrder()).length
      expect((await list(`limit=${total}`)).nextCursor).toBeNull()
      expect((await list('limit=100')).nextCursor).toBeNull()
      const short = await list(`limit=${total - 1}`)
      expect(short.nextCursor).not.toBeNull()
      const rest = await list(`limit=5&cursor=${encodeURIComponent(short.nextCursor as string)}`)
      expect(rest.items).toHaveLength(1)
      expect(rest.nextCursor).toBeNull()
    })

    it('keeps a cursor valid when players are added and removed', async () => {
      const first = await list('limit=10')
      const added = await create({ firstName: 'Aaron', lastName: 'Aaronson' })
      const removed = first.items[9] as Player
      const deleted = await t.app.inject({
        method: 'DELETE',
        url: `/players/${removed.id}`,
        headers: AUTH,
      })
      expect(deleted.statusCode).toBe(204)
      const next = await list(`limit=10&cursor=${encodeURIComponent(first.nextCursor as string)}`)
      const seen = new Set(first.items.map((p) => p.id))
      expect(next.items.some((p) => seen.has(p.id) || p.id === added.id)).toBe(false)
      const order = await databaseOrder()
      const after = order.slice(order.indexOf(first.items[8]?.id as number) + 1)
      expect(next.items.map((p) => p.id)).toEqual(after.slice(0, 10))
    })

    it('searches first and last names case-insensitively', async () => {
      const byLast = await list('search=hUgHeS')
      expect(byLast.items.map((p) => p.id)).toContain(1)
      expect(byLast.items.every((p) => /hughes/i.test(`${p.firstName} ${p.lastName}`))).toBe(true)
      const byFirst = await list('search=BEN')
      expect(byFirst.items.map((p) => p.id)).toContain(1)
      const full = await list(`search=${encodeURIComponent('ben hughes')}`)
      expect(full.items.map((p) => p.id)).toEqual([1])
      const expected = await databaseOrder("first_name ILIKE '%o%' OR last_name ILIKE '%o%'")
      const pages = await all('search=O', 4)
      expect(pages.flat().map((p) => p.id)).toEqual(expected)
    })

    it('matches LIKE wildcards in a search literally', async () => {
      for (const search of ['%', '_', '\\', "%' OR 1=1 --"]) {
        const page = await list(`search=${encodeURIComponent(search)}`)
        expect(page.items).toEqual([])
      }
      const nobody = await list(`search=${encodeURIComponent('ß漢字🏀')}`)
      expect(nobody.items).toEqual([])
    })

    it('filters by team (roster membership) and pages within the filter', async () => {
      const { rows } = await t.app.pg.query<{ player_id: number }>(
        'SELECT player_id FROM player_teams WHERE team_id = 2',
      )
      const pages = await all('teamId=2', 3)
      const ids = pages.flat().map((p) => p.id)
      expect(ids.sort()).toEqual(rows.map((r) => r.player_id).sort())
      for (const p of pages.flat()) expect(p.teams.map((x) => x.teamId)).toContain(2)
      const both = await list('teamId=2&search=hughes')
      expect(both.items.map((p) => p.id)).toEqual([1])
    })

    it('answers 404 for an unknown team, and a team without players an empty page', async () => {
      expectError(
        await t.app.inject({ url: '/players?teamId=999', headers: AUTH }),
        404,
        /^team 999 not found$/,
      )
      expectError(
        await t.app.inject({ url: '/players?teamId=999&search=hughes&limit=1', headers: AUTH }),
        404,
        /^team 999 not found$/,
      )
      const team = await t.app.inject({
        method: 'POST',
        url: '/teams',
        headers: AUTH,
        payload: { name: 'No Players Yet', ageGroup: 'U8', season: '2026-27' },
      })
      expect(team.statusCode, team.body).toBe(201)
      const teamId = team.json().id as number
      expect(await list(`teamId=${teamId}`)).toEqual({ items: [], nextCursor: null })
      // Filters that match nobody on a team that exists: still an empty page, not a 404.
      expect(await list('teamId=2&search=nobody-by-this-name')).toEqual({
        items: [],
        nextCursor: null,
      })
    })

    it.each([
      'limit=0',
      'limit=101',
      'limit=-5',
      'limit=abc',
      'limit=1.5',
      'teamId=abc',
      'teamId=0',
      'teamId=2147483648',
      // Number() would read these as 1; ids and limits are plain digits.
      'teamId=0x1',
      'teamId=1e0',
      'teamId=%201',
      'teamId=1.0',
      'limit=0x1',
      'limit=1e1',
      'teamId=1&teamId=2',
      'cursor=',
      'cursor=abc',
      'cursor=%25%25%25',
      `cursor=${Buffer.from('[1,"a","b",-1]').toString('base64url')}`,
      `cursor=${Buffer.from('{"id":1}').toString('base64url')}`,
      // Another version, and one element too many, of the shape that is taken (below).
      `cursor=${Buffer.from('[2,"Hughes","Ben",1]').toString('base64url')}`,
      `cursor=${Buffer.from('[1,"Hughes","Ben",1,5]').toString('base64url')}`,
      `cursor=${'A'.repeat(3000)}`,
      `search=${'x'.repeat(101)}`,
      'search=%00',
      'search=a%00b',
    ])('answers 400 for %s', async (query) => {
      const res = await t.app.inject({ url: `/players?${query}`, headers: AUTH })
      expectError(res, 400)
      // Refused by the route's schema, not by PostgreSQL.
      expect(res.json().code).not.toBe('DATABASE_REJECTED')
    })

    it('takes a cursor of the shape it writes, one it did not write itself included', async () => {
      const cursor = Buffer.from('[1,"Hughes","Ben",1]').toString('base64url')
      const res = await t.app.inject({ url: `/players?cursor=${cursor}`, headers: AUTH })
      expect(res.statusCode, res.body).toBe(200)
    })

    it('refuses a request without the token with 401', async () => {
      expectError(await t.app.inject({ url: '/players' }), 401)
    })
  })

  describe('POST /players', () => {
    it('answers 400 for a lone surrogate and stores nothing (PostgreSQL would keep U+FFFD)', async () => {
      // JSON may carry an unpaired UTF-16 surrogate (here JSON.stringify writes `\ud800`).
      const before = await rowCounts(t.app)
      const res = await t.app.inject({
        method: 'POST',
        url: '/players',
        headers: AUTH,
        payload: { firstName: 'Zo\ud800e', lastName: 'Quinn' },
      })
      expect(expectError(res, 400, /lone surrogate/).code).toBe('INVALID_UNICODE')
      expect(await rowCounts(t.app)).toEqual(before)
    })

    it('creates a player with only names; the rest is null and no teams', async () => {
      const player = await create({ firstName: 'Zoe', lastName: 'Quinn' })
      expect(player).toEqual({
        id: expect.any(Number),
        firstName: 'Zoe',
        lastName: 'Quinn',
        birthDate: null,
        position: null,
        customNotes: null,
        teams: [],
      })
      const again = await t.app.inject({ url: `/players/${player.id}`, headers: AUTH })
      expect(again.json()).toEqual(player)
    })

    it('stores every optional field as given, quotes and unicode included', async () => {
      const notes = 'O\'Brien\'s "cousin"; -- DROP TABLE players; 🏀 ü\nline two'
      const player = await create({
        firstName: 'Zoë',
        lastName: "D'Angelo",
        birthDate: '2016-02-29',
        position: 'guard',
        customNotes: notes,
      })
      expect(player).toMatchObject({
        firstName: 'Zoë',
        lastName: "D'Angelo",
        birthDate: '2016-02-29',
        position: 'guard',
        customNotes: notes,
      })
      const again = await t.app.inject({ url: `/players/${player.id}`, headers: AUTH })
      expect(again.json()).toEqual(player)
    })

    it.each([
      ['no last name', { firstName: 'A' }],
      ['an empty first name', { firstName: '', lastName: 'B' }],
      ['a first name over 100 characters', { firstName: 'a'.repeat(101), lastName: 'B' }],
      ['a number for a name', { firstName: 7, lastName: 'B' }],
      ['a NUL in a name', { firstName: 'A\u0000', lastName: 'B' }],
      ['an impossible date', { firstName: 'A', lastName: 'B', birthDate: '2015-02-29' }],
      ['a date and time', { firstName: 'A', lastName: 'B', birthDate: '2015-01-01T00:00:00Z' }],
      ['a year before 1900', { firstName: 'A', lastName: 'B', birthDate: '1800-01-01' }],
      ['year 0', { firstName: 'A', lastName: 'B', birthDate: '0000-01-01' }],
      [
        'a position over 20 characters',
        { firstName: 'A', lastName: 'B', position: 'p'.repeat(21) },
      ],
      [
        'notes over 10000 characters',
        { firstName: 'A', lastName: 'B', customNotes: 'n'.repeat(10_001) },
      ],
      ['an unknown property', { firstName: 'A', lastName: 'B', teamId: 2 }],
      ['the legacy jersey number', { firstName: 'A', lastName: 'B', jerseyNumber: 5 }],
    ])('answers 400 for %s and creates nothing', async (_what, payload) => {
      const before = await rowCounts(t.app)
      const res = await t.app.inject({ method: 'POST', url: '/players', headers: AUTH, payload })
      expectError(res, 400)
      expect(await rowCounts(t.app)).toEqual(before)
    })

    it('refuses a request without the token with 401', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/players',
        payload: { firstName: 'A', lastName: 'B' },
      })
      expectError(res, 401)
    })
  })

  describe('GET /players/:id', () => {
    it('answers player 1 with the #23 they kept on the Hawks', async () => {
      const res = await t.app.inject({ url: '/players/1', headers: AUTH })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({
        id: 1,
        firstName: 'Ben',
        lastName: 'Hughes',
        birthDate: '2015-12-11',
        position: 'center',
        customNotes: 'Parent pickup only — see guardian',
        teams: [{ teamId: 2, jerseyNumber: 23, role: 'player' }],
      })
    })

    it('answers player 2 on the Hawks without a number', async () => {
      const res = await t.app.inject({ url: '/players/2', headers: AUTH })
      expect(res.json().teams).toEqual([{ teamId: 2, jerseyNumber: null, role: 'player' }])
    })

    it('lists every team of a player on several rosters, by team id', async () => {
      const player = await create({ firstName: 'Multi', lastName: 'Team' })
      for (const teamId of [4, 1]) {
        const res = await t.app.inject({
          method: 'PUT',
          url: `/teams/${teamId}/roster/${player.id}`,
          headers: AUTH,
          payload: { role: teamId === 1 ? 'captain' : 'player' },
        })
        expect(res.statusCode).toBe(201)
      }
      const res = await t.app.inject({ url: `/players/${player.id}`, headers: AUTH })
      expect(res.json().teams).toEqual([
        { teamId: 1, jerseyNumber: null, role: 'captain' },
        { teamId: 4, jerseyNumber: null, role: 'player' },
      ])
    })

    it('answers 404 for an unknown player, 400 for bad ids, 401 without the token', async () => {
      expectError(
        await t.app.inject({ url: '/players/9999', headers: AUTH }),
        404,
        'player 9999 not found',
      )
      for (const id of BAD_IDS) {
        expectError(await t.app.inject({ url: `/players/${id}`, headers: AUTH }), 400)
      }
      for (const id of IMPOSSIBLE_IDS) {
        expectError(
          await t.app.inject({ url: `/players/${id}`, headers: AUTH }),
          404,
          `player ${id} not found`,
        )
      }
      expectError(await t.app.inject({ url: '/players/1' }), 401)
    })
  })

  describe('PATCH /players/:id', () => {
    it('changes only the given fields; null clears an optional one', async () => {
      const player = await create({
        firstName: 'Pat',
        lastName: 'Change',
        birthDate: '2014-05-05',
        position: 'forward',
        customNotes: 'allergic to peanuts',
      })
      const patch = (payload: Record<string, unknown>) =>
        t.app.inject({ method: 'PATCH', url: `/players/${player.id}`, headers: AUTH, payload })
      const renamed = await patch({ lastName: 'Changed', customNotes: null })
      expect(renamed.statusCode, renamed.body).toBe(200)
      expect(renamed.json()).toEqual({ ...player, lastName: 'Changed', customNotes: null })
      const dated = await patch({ birthDate: null, position: 'center' })
      expect(dated.json()).toEqual({
        ...player,
        lastName: 'Changed',
        customNotes: null,
        birthDate: null,
        position: 'center',
      })
    })

    it('keeps roster entries when a player is renamed', async () => {
      const res = await t.app.inject({
        method: 'PATCH',
        url: '/players/1',
        headers: AUTH,
        payload: { firstName: 'Benjamin' },
      })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({
        firstName: 'Benjamin',
        teams: [{ teamId: 2, jerseyNumber: 23, role: 'player' }],
      })
    })

    it.each([
      ['an empty body', {}],
      ['a null first name', { firstName: null }],
      ['a blank last name', { lastName: ' \t ' }],
      ['an unknown property', { nickname: 'B' }],
      ['a bad date', { birthDate: '2015-13-01' }],
      ['a date as a number', { birthDate: 20150101 }],
    ])('answers 400 for %s and changes nothing', async (_what, payload) => {
      const before = await t.app.inject({ url: '/players/3', headers: AUTH })
      const res = await t.app.inject({ method: 'PATCH', url: '/players/3', headers: AUTH, payload })
      expectError(res, 400)
      expect((await t.app.inject({ url: '/players/3', headers: AUTH })).json()).toEqual(
        before.json(),
      )
    })

    it('answers 404 for an unknown player, 400 for a bad id, 401 without the token', async () => {
      const payload = { position: 'guard' }
      const patch = (url: string, headers: Record<string, string> = AUTH) =>
        t.app.inject({ method: 'PATCH', url, headers, payload })
      expectError(await patch('/players/9999'), 404, 'player 9999 not found')
      expectError(await patch('/players/x3'), 400)
      expectError(await patch('/players/-3'), 404, 'player -3 not found')
      expectError(await patch('/players/3', {}), 401)
    })
  })

  describe('DELETE /players/:id', () => {
    it('deletes the player and their roster entries', async () => {
      const player = await create({ firstName: 'Gone', lastName: 'Soon' })
      await t.app.inject({
        method: 'PUT',
        url: `/teams/3/roster/${player.id}`,
        headers: AUTH,
        payload: { jerseyNumber: 1 },
      })
      const before = await rowCounts(t.app)
      const res = await t.app.inject({
        method: 'DELETE',
        url: `/players/${player.id}`,
        headers: AUTH,
      })
      expect(res.statusCode).toBe(204)
      expect(await rowCounts(t.app)).toMatchObject({
        players: before.players - 1,
        player_teams: before.player_teams - 1,
      })
      expectError(await t.app.inject({ url: `/players/${player.id}`, headers: AUTH }), 404)
      const again = await t.app.inject({
        method: 'DELETE',
        url: `/players/${player.id}`,
        headers: AUTH,
      })
      expectError(again, 404)
    })

    it('answers 400 for a bad id and 401 without the token', async () => {
      expectError(await t.app.inject({ method: 'DELETE', url: '/players/x', headers: AUTH }), 400)
      expectError(await t.app.inject({ method: 'DELETE', url: '/players/1' }), 401)
    })
  })
})
