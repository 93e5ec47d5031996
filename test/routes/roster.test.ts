import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Migrator } from '../../src/migrate/migrator.js'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { until } from '../helpers/faults.js'
import { BAD_IDS, expectError, IMPOSSIBLE_IDS, rowCounts } from './domain-helpers.js'

interface Entry {
  playerId: number
  firstName: string
  lastName: string
  jerseyNumber: number | null
  role: string
}

describe('/teams/:id/roster on the migrated incident database', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  const put = (teamId: number | string, playerId: number | string, payload?: unknown) =>
    t.app.inject({
      method: 'PUT',
      url: `/teams/${teamId}/roster/${playerId}`,
      headers: AUTH,
      ...(payload === undefined ? {} : { payload: payload as object }),
    })
  const roster = async (teamId: number): Promise<Entry[]> => {
    const res = await t.app.inject({ url: `/teams/${teamId}/roster`, headers: AUTH })
    expect(res.statusCode).toBe(200)
    return res.json().items
  }
  const newPlayer = async (lastName = 'Doe') => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/players',
      headers: AUTH,
      payload: { firstName: 'Test', lastName },
    })
    expect(res.statusCode).toBe(201)
    return res.json().id as number
  }
  const newTeam = async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/teams',
      headers: AUTH,
      payload: { name: 'Roster Test', ageGroup: 'U10', season: '2026-27' },
    })
    return res.json().id as number
  }
  const holders = async (teamId: number, jerseyNumber: number) => {
    const { rows } = await t.app.pg.query<{ player_id: number }>(
      'SELECT player_id FROM player_teams WHERE team_id = $1 AND jersey_number = $2',
      [teamId, jerseyNumber],
    )
    return rows.map((r) => r.player_id)
  }

  describe('GET /teams/:id/roster', () => {
    it('answers the Hawks after the backfill: player 1 wears 23, player 2 has no number', async () => {
      const items = await roster(2)
      // CONTRACT.md's fields exactly (the team is the one in the path).
      expect(items.find((e) => e.playerId === 1)).toEqual({
        playerId: 1,
        firstName: 'Ben',
        lastName: 'Hughes',
        jerseyNumber: 23,
        role: 'player',
      })
      expect(items.find((e) => e.playerId === 2)).toMatchObject({ jerseyNumber: null })
      expect(items.filter((e) => e.jerseyNumber === 23)).toHaveLength(1)
    })

    it('orders by jersey number, no number last, then last name, first name, player id', async () => {
      const items = await roster(2)
      const key = (e: Entry) => [e.jerseyNumber ?? 1000, e.lastName, e.firstName, e.playerId]
      for (let i = 1; i < items.length; i++) {
        const [a, b] = [key(items[i - 1] as Entry), key(items[i] as Entry)]
        if (a[0] !== b[0]) expect(a[0] as number).toBeLessThan(b[0] as number)
      }
      const numbered = items.filter((e) => e.jerseyNumber !== null)
      const unnumbered = items.filter((e) => e.jerseyNumber === null)
      expect(items).toEqual([...numbered, ...unnumbered])
      // Among players without a number the database orders by name then id.
      const { rows } = await t.app.pg.query<{ player_id: number }>(
        `SELECT pt.player_id FROM player_teams pt JOIN players p ON p.id = pt.player_id
          WHERE pt.team_id = 2 AND pt.jersey_number IS NULL
          ORDER BY p.last_name, p.first_name, p.id`,
      )
      expect(unnumbered.map((e) => e.playerId)).toEqual(rows.map((r) => r.player_id))
    })

    it('answers an empty roster for a team without players', async () => {
      const teamId = await newTeam()
      expect(await roster(teamId)).toEqual([])
    })

    it('answers 404 for an unknown team, 400 for a bad id, 401 without the token', async () => {
      expectError(
        await t.app.inject({ url: '/teams/999/roster', headers: AUTH }),
        404,
        'team 999 not found',
      )
      for (const id of BAD_IDS) {
        expectError(await t.app.inject({ url: `/teams/${id}/roster`, headers: AUTH }), 400)
      }
      for (const id of IMPOSSIBLE_IDS) {
        expectError(await t.app.inject({ url: `/teams/${id}/roster`, headers: AUTH }), 404)
      }
      expectError(await t.app.inject({ url: '/teams/2/roster' }), 401)
    })
  })

  describe('PUT /teams/:id/roster/:playerId', () => {
    it('adds a player with 201 (no number, role player), then updates with 200', async () => {
      const teamId = await newTeam()
      const playerId = await newPlayer('Adams')
      const joined = await put(teamId, playerId)
      expect(joined.statusCode, joined.body).toBe(201)
      // The entry as the roster lists it (CONTRACT.md's fields; the team is the path's).
      expect(joined.json()).toEqual({
        playerId,
        firstName: 'Test',
        lastName: 'Adams',
        jerseyNumber: null,
        role: 'player',
      })

      const numbered = await put(teamId, playerId, { jerseyNumber: 7 })
      expect(numbered.statusCode).toBe(200)
      expect(numbered.json()).toMatchObject({ jerseyNumber: 7, role: 'player' })

      // Omitted fields keep their value.
      const captain = await put(teamId, playerId, { role: 'captain' })
      expect(captain.statusCode).toBe(200)
      expect(captain.json()).toMatchObject({ jerseyNumber: 7, role: 'captain' })

      const unchanged = await put(teamId, playerId, {})
      expect(unchanged.statusCode).toBe(200)
      expect(unchanged.json()).toMatchObject({ jerseyNumber: 7, role: 'captain' })

      const cleared = await put(teamId, playerId, { jerseyNumber: null })
      expect(cleared.statusCode).toBe(200)
      expect(cleared.json()).toMatchObject({ jerseyNumber: null, role: 'captain' })

      expect(await roster(teamId)).toEqual([cleared.json()])
    })

    it('adds with a number and a role at once; 0 is a number', async () => {
      const teamId = await newTeam()
      const playerId = await newPlayer()
      const res = await put(teamId, playerId, { jerseyNumber: 0, role: 'assistant' })
      expect(res.statusCode).toBe(201)
      expect(res.json()).toMatchObject({ jerseyNumber: 0, role: 'assistant' })
      // The contract names no roles: any word up to the column's 20 characters is kept.
      const coach = await put(teamId, playerId, { role: 'player-coach' })
      expect(coach.statusCode).toBe(200)
      expect((await roster(teamId))[0]?.role).toBe('player-coach')
      // Words separated by single spaces, kept as given.
      const assistant = await put(teamId, playerId, { role: 'assistant team coach' })
      expect(assistant.statusCode, assistant.body).toBe(200)
      expect((await roster(teamId))[0]?.role).toBe('assistant team coach')
    })

    it('answers 409 when the number is taken on that team, and changes nothing', async () => {
      const before = await roster(2)
      const res = await put(2, 2, { jerseyNumber: 23 })
      expectError(res, 409, 'jersey number 23 is already taken on this team')
      expect(await roster(2)).toEqual(before)

      const outsider = await newPlayer()
      const counts = await rowCounts(t.app)
      expectError(await put(2, outsider, { jerseyNumber: 23 }), 409)
      expect(await rowCounts(t.app)).toEqual(counts)
      expect(await holders(2, 23)).toEqual([1])
    })

    it('lets the holder keep their own number, and another team use it', async () => {
      expect((await put(2, 1, { jerseyNumber: 23 })).statusCode).toBe(200)
      const res = await put(3, 2, { jerseyNumber: 23 })
      expect(res.statusCode, res.body).toBe(201)
      expect(await holders(3, 23)).toEqual([2])
    })

    it('frees a number when its holder leaves', async () => {
      const teamId = await newTeam()
      const [a, b] = [await newPlayer(), await newPlayer()]
      expect((await put(teamId, a, { jerseyNumber: 11 })).statusCode).toBe(201)
      expectError(await put(teamId, b, { jerseyNumber: 11 }), 409)
      const left = await t.app.inject({
        method: 'DELETE',
        url: `/teams/${teamId}/roster/${a}`,
        headers: AUTH,
      })
      expect(left.statusCode).toBe(204)
      expect((await put(teamId, b, { jerseyNumber: 11 })).statusCode).toBe(201)
    })

    it('gives exactly one of two admins racing for #23 the number, the other a 409', async () => {
      for (let round = 0; round < 5; round++) {
        const teamId = await newTeam()
        const [a, b] = [await newPlayer(), await newPlayer()]
        const results = await Promise.all([
          put(teamId, a, { jerseyNumber: 23 }),
          put(teamId, b, { jerseyNumber: 23 }),
        ])
        const codes = results.map((r) => r.statusCode).sort()
        expect(codes).toEqual([201, 409])
        const loser = results.find((r) => r.statusCode === 409)
        expectError(
          loser as (typeof results)[number],
          409,
          'jersey number 23 is already taken on this team',
        )
        const winner = results.find((r) => r.statusCode === 201)?.json()
        expect(await holders(teamId, 23)).toEqual([winner.playerId])
        // The loser did not join the roster either: the statement is all or nothing.
        expect(await roster(teamId)).toHaveLength(1)
      }
    })

    it('answers 201 once and 200 once when the same player is put twice at the same time', async () => {
      const teamId = await newTeam()
      const playerId = await newPlayer()
      const results = await Promise.all([put(teamId, playerId, {}), put(teamId, playerId, {})])
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 201])
      expect(await roster(teamId)).toHaveLength(1)
    })

    it('races of existing players for a free number also end with one holder', async () => {
      const teamId = await newTeam()
      const players = [await newPlayer(), await newPlayer(), await newPlayer()]
      for (const p of players) expect((await put(teamId, p)).statusCode).toBe(201)
      const results = await Promise.all(players.map((p) => put(teamId, p, { jerseyNumber: 99 })))
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409, 409])
      expect(await holders(teamId, 99)).toHaveLength(1)
    })

    it('answers 201 with the names for a player created while the PUT waited on the number', async () => {
      // The PUT waits on the number's unique index (another transaction holds #23 on the
      // team) while the player is created: the foreign key, checked at the end of the
      // statement with a fresh snapshot, sees the player; the statement's own snapshot,
      // taken before, does not. The write commits, so the answer must be the entry.
      const teamId = await newTeam()
      const holder = await newPlayer()
      const { rows } = await t.app.pg.query<{ id: number }>(
        "SELECT nextval(pg_get_serial_sequence('players', 'id'))::int AS id",
      )
      const playerId = (rows[0] as { id: number }).id
      const blocker = new pg.Client({ connectionString: t.db.url })
      await blocker.connect()
      try {
        await blocker.query('BEGIN')
        await blocker.query(
          'INSERT INTO player_teams (team_id, player_id, jersey_number) VALUES ($1, $2, 23)',
          [teamId, holder],
        )
        const pending = put(teamId, playerId, { jerseyNumber: 23 })
        await until('the PUT to wait on the number', async () => {
          const waiting = await t.app.pg.query(
            `SELECT 1 FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO player_teams%'`,
          )
          return waiting.rowCount === 1
        })
        await t.app.pg.query(
          "INSERT INTO players (id, first_name, last_name) VALUES ($1, 'Late', 'Comer')",
          [playerId],
        )
        await blocker.query('ROLLBACK')
        const res = await pending
        expect(res.statusCode, res.body).toBe(201)
        expect(res.json()).toEqual({
          playerId,
          firstName: 'Late',
          lastName: 'Comer',
          jerseyNumber: 23,
          role: 'player',
        })
        expect(await holders(teamId, 23)).toEqual([playerId])
      } finally {
        await blocker.end()
      }
    })

    it.each([
      ['a number over 99', { jerseyNumber: 100 }],
      ['a negative number', { jerseyNumber: -1 }],
      ['a fractional number', { jerseyNumber: 1.5 }],
      ['a number as a string', { jerseyNumber: '23' }],
      ['a number as a boolean', { jerseyNumber: true }],
      ['a huge number', { jerseyNumber: 1e308 }],
      ['an empty role', { role: '' }],
      ['a blank role', { role: '   ' }],
      ['a role with a NUL character', { role: 'a\u0000' }],
      ['a role over 20 characters', { role: 'c'.repeat(21) }],
      ['a role with a leading space', { role: ' captain' }],
      ['a role with a trailing space', { role: 'captain ' }],
      ['a role with a trailing line break', { role: 'captain\n' }],
      ['a role with two spaces between words', { role: 'head  coach' }],
      ['a role with a tab between words', { role: 'head\tcoach' }],
      ['a null role', { role: null }],
      ['an unknown property', { jerseyNumber: 5, team: 2 }],
      ['an array', [{ jerseyNumber: 5 }]],
    ])('answers 400 for %s and changes nothing', async (_what, payload) => {
      const counts = await rowCounts(t.app)
      const before = await roster(2)
      for (const player of [2, 3]) {
        const res = await put(2, player, payload)
        expectError(res, 400)
        // Refused by the body's schema, before any query (not by the database).
        expect(res.json().code).toBe('FST_ERR_VALIDATION')
      }
      expect(await roster(2)).toEqual(before)
      expect(await rowCounts(t.app)).toEqual(counts)
    })

    it('takes a JSON content type with an empty body as no body, as many clients send it', async () => {
      const player = await newPlayer()
      const json = { ...AUTH, 'content-type': 'application/json' }
      const joined = await t.app.inject({
        method: 'PUT',
        url: `/teams/2/roster/${player}`,
        headers: json,
      })
      expect(joined.statusCode, joined.body).toBe(201)
      expect(joined.json()).toMatchObject({ playerId: player, jerseyNumber: null, role: 'player' })
      const left = await t.app.inject({
        method: 'DELETE',
        url: `/teams/2/roster/${player}`,
        headers: json,
      })
      expect(left.statusCode, left.body).toBe(204)
    })

    it('answers 415 for a body that is not JSON', async () => {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/teams/2/roster/2',
        headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'jerseyNumber=23',
      })
      expectError(res, 415)
    })

    it('answers 400 for non-integer ids in either place, 404 naming the one no row can have', async () => {
      const before = await rowCounts(t.app)
      for (const id of BAD_IDS) {
        expectError(await put(id, 1, {}), 400)
        expectError(await put(2, id, {}), 400)
      }
      for (const id of IMPOSSIBLE_IDS) {
        expect(expectError(await put(id, 1, {}), 404).message).toBe(`team ${id} not found`)
        expect(expectError(await put(2, id, {}), 404).message).toBe(`player ${id} not found`)
      }
      expect(await rowCounts(t.app)).toEqual(before)
    })

    it('answers 404 naming the unknown team or player', async () => {
      expectError(await put(999, 1, {}), 404, 'team 999 not found')
      expectError(await put(2, 9999, { jerseyNumber: 5 }), 404, 'player 9999 not found')
      expectError(await put(2147483647, 2147483647, {}), 404)
      // Both unknown: the team, as DELETE says.
      expectError(await put(999, 9999, {}), 404, 'team 999 not found')
    })

    it('answers 404 for an unknown player even when the number asked for is taken', async () => {
      // PostgreSQL checks the unique number on insert, the foreign keys at the end of the
      // statement: the number's 409 would come first. A player that does not exist is a 404.
      expect(await holders(2, 23)).toEqual([1])
      const counts = await rowCounts(t.app)
      expectError(await put(2, 9999, { jerseyNumber: 23 }), 404, 'player 9999 not found')
      expect(await rowCounts(t.app)).toEqual(counts)
    })

    it('refuses a request without the token with 401', async () => {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/teams/2/roster/2',
        payload: { jerseyNumber: 1 },
      })
      expectError(res, 401)
    })
  })

  describe('DELETE /teams/:id/roster/:playerId', () => {
    it('takes the player off the roster and keeps the player', async () => {
      const teamId = await newTeam()
      const playerId = await newPlayer()
      await put(teamId, playerId, { jerseyNumber: 4 })
      const url = `/teams/${teamId}/roster/${playerId}`
      const res = await t.app.inject({ method: 'DELETE', url, headers: AUTH })
      expect(res.statusCode).toBe(204)
      expect(await roster(teamId)).toEqual([])
      const player = await t.app.inject({ url: `/players/${playerId}`, headers: AUTH })
      expect(player.json().teams).toEqual([])
      expectError(
        await t.app.inject({ method: 'DELETE', url, headers: AUTH }),
        404,
        `player ${playerId} is not on the roster of team ${teamId}`,
      )
    })

    it('races with deleting the player or the team end without a deadlock', async () => {
      // Each round: a player on a team's roster, with the legacy team_id naming it, taken
      // off the roster while the player (even rounds) or the team (odd) is deleted.
      const round = async (i: number) => {
        const teamId = await newTeam()
        const playerId = await newPlayer(`Race${i}`)
        expect((await put(teamId, playerId, { jerseyNumber: i % 100 })).statusCode).toBe(201)
        await t.app.pg.query('UPDATE players SET team_id = $1 WHERE id = $2', [teamId, playerId])
        const other = i % 2 === 0 ? `/players/${playerId}` : `/teams/${teamId}`
        const [off, deleted] = await Promise.all([
          t.app.inject({
            method: 'DELETE',
            url: `/teams/${teamId}/roster/${playerId}`,
            headers: AUTH,
          }),
          t.app.inject({ method: 'DELETE', url: other, headers: AUTH }),
        ])
        return [off.statusCode, deleted.statusCode]
      }
      const statuses: number[][] = []
      for (let batch = 0; batch < 20; batch++) {
        statuses.push(...(await Promise.all([0, 1, 2, 3, 4].map((k) => round(batch * 5 + k)))))
      }
      for (const [off, deleted] of statuses) {
        expect([204, 404]).toContain(off)
        expect(deleted).toBe(204)
      }
    })

    it('a player taken off a backfilled roster stays off if 023 runs again (its ledger row lost)', async () => {
      const { rows } = await t.app.pg.query<{ player_id: number; team_id: number; other: number }>(
        `SELECT p.id AS player_id, p.team_id,
                (SELECT min(o.team_id) FROM players o WHERE o.team_id <> p.team_id) AS other
           FROM players p JOIN player_teams pt ON pt.player_id = p.id AND pt.team_id = p.team_id
          ORDER BY p.id DESC LIMIT 1`,
      )
      const backfilled = rows[0]
      if (!backfilled) throw new Error('the incident database has no backfilled roster entry')
      const { player_id: playerId, team_id: teamId, other } = backfilled
      // On another team as well, by hand: leaving that one keeps the legacy team.
      await put(other, playerId)
      const off = (team: number) =>
        t.app.inject({ method: 'DELETE', url: `/teams/${team}/roster/${playerId}`, headers: AUTH })
      expect((await off(other)).statusCode).toBe(204)
      const legacy = async () =>
        (await t.app.pg.query('SELECT team_id FROM players WHERE id = $1', [playerId])).rows[0]
          .team_id
      expect(await legacy()).toBe(teamId)
      expect((await off(teamId)).statusCode).toBe(204)
      expect(await legacy()).toBeNull()

      await t.app.pg.query("DELETE FROM schema_migrations WHERE name = '023_jersey_backfill'")
      const migrator = new Migrator({ connectionString: t.db.url })
      expect(await migrator.up()).toEqual(['023_jersey_backfill'])
      expect((await roster(teamId)).map((e) => e.playerId)).not.toContain(playerId)
    })

    it('answers 404 for an unknown team or player, 400 for bad ids, 401 without the token', async () => {
      const del = (url: string, headers: Record<string, string> = AUTH) =>
        t.app.inject({ method: 'DELETE', url, headers })
      expectError(await del('/teams/999/roster/1'), 404, 'team 999 not found')
      expectError(await del('/teams/2/roster/9999'), 404, 'player 9999 not found')
      expectError(await del('/teams/2/roster/abc'), 400)
      expectError(await del('/teams/2/roster/1', {}), 401)
      expect(await holders(2, 23)).toEqual([1])
    })
  })
})
