import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { schemaSnapshot } from '../../src/migrate/catalog.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

describe('the incident database (stamp 018, 020 applied by hand)', () => {
  let incident: TestDatabase
  let fresh: TestDatabase
  let notesBefore: { id: number; custom_notes: string }[]
  let countsBefore: Record<string, number>

  const counts = (url: string) =>
    withClient(url, async (c) => {
      const out: Record<string, number> = {}
      for (const t of [
        'teams',
        'players',
        'coaches',
        'guardians',
        'registrations',
        'games',
        'practices',
        'attendance',
        'users',
      ]) {
        out[t] = Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
      }
      return out
    })

  beforeAll(async () => {
    ;[incident, fresh] = await Promise.all([
      createTestDatabase('incident'),
      createTestDatabase('empty'),
    ])
    notesBefore = await withClient(
      incident.url,
      async (c) =>
        (
          await c.query(
            'SELECT id, custom_notes FROM players WHERE custom_notes IS NOT NULL ORDER BY id',
          )
        ).rows,
    )
    countsBefore = await counts(incident.url)
  })
  afterAll(async () => {
    await Promise.all([incident?.drop(), fresh?.drop()])
  })

  it('boots through the chain: 001–018 baseline, 019, 021, 023 run, 020 and 022 already present', async () => {
    const migrator = new Migrator({ connectionString: incident.url })
    const applied = await migrator.up()
    expect(applied).toHaveLength(23)
    const ledger = await migrator.ledger()
    const outcome = Object.fromEntries(ledger.map((r) => [r.name, r.outcome]))
    expect(outcome['019_player_teams']).toBe('ran')
    expect(outcome['020_custom_notes']).toBe('already-present')
    expect(outcome['021_oauth_tokens']).toBe('ran')
    // The merge point changes nothing: MIGRATIONS.md reports that `already-present`.
    expect(outcome['022_merge_heads']).toBe('already-present')
    expect(outcome['023_jersey_backfill']).toBe('ran')
    // The stamp says 018: 001–018 are recorded `baseline`, each after its checks found
    // everything in place (the checks still run: see legacy-stamp.test.ts).
    const stamped = Object.keys(outcome).filter((n) => n < '019')
    expect(stamped).toHaveLength(18)
    for (const name of stamped) expect(outcome[name], name).toBe('baseline')
    expect(ledger.find((r) => r.name === '006_player_jersey_number')?.changes).toEqual([
      { object: 'players.jersey_number', action: 'exists' },
      { object: 'players_jersey_number_check', action: 'exists' },
    ])
    const row020 = ledger.find((r) => r.name === '020_custom_notes')
    expect(row020?.changes).toEqual([{ object: 'players.custom_notes', action: 'exists' }])
    expect(await migrator.pending()).toEqual([])
    expect(migrator.view().state).toBe('complete')
  })

  it('keeps every note and every row, and leaves the legacy stamp alone', async () => {
    const notesAfter = await withClient(
      incident.url,
      async (c) =>
        (
          await c.query(
            'SELECT id, custom_notes FROM players WHERE custom_notes IS NOT NULL ORDER BY id',
          )
        ).rows,
    )
    expect(notesBefore.length).toBeGreaterThan(0)
    expect(notesAfter).toEqual(notesBefore)
    expect(await counts(incident.url)).toEqual(countsBefore)
    const stamp = await withClient(incident.url, (c) =>
      c.query('SELECT version_num FROM alembic_version'),
    )
    expect(stamp.rows).toEqual([{ version_num: '018' }])
  })

  it("resolves the Hawks' two #23s: the lowest id keeps it, the other is named in the ledger", async () => {
    const roster = await withClient(
      incident.url,
      async (c) =>
        (
          await c.query(
            'SELECT player_id, jersey_number FROM player_teams WHERE team_id = 2 AND player_id IN (1, 2) ORDER BY player_id',
          )
        ).rows,
    )
    expect(roster).toEqual([
      { player_id: 1, jersey_number: 23 },
      { player_id: 2, jersey_number: null },
    ])
    const withTeam = await withClient(incident.url, async (c) =>
      Number(
        (await c.query('SELECT count(*) AS n FROM players WHERE team_id IS NOT NULL')).rows[0].n,
      ),
    )
    const rosterRows = await withClient(incident.url, async (c) =>
      Number((await c.query('SELECT count(*) AS n FROM player_teams')).rows[0].n),
    )
    expect(rosterRows).toBe(withTeam)
    const ledger = await new Migrator({ connectionString: incident.url }).ledger()
    const cleared = ledger
      .find((r) => r.name === '023_jersey_backfill')
      ?.changes.find((c) => c.action === 'cleared')
    expect(cleared?.detail).toMatchObject({
      players: [{ playerId: 2, teamId: 2, jerseyNumber: 23, keptBy: 1 }],
    })
  })

  it('ends with the schema a fresh database gets', async () => {
    await new Migrator({ connectionString: fresh.url }).up()
    const [a, b] = await Promise.all([
      withClient(incident.url, schemaSnapshot),
      withClient(fresh.url, schemaSnapshot),
    ])
    expect(a.columns.length).toBeGreaterThan(60)
    expect(a).toEqual(b)
  })

  it('finds nothing to do on a second run', async () => {
    const migrator = new Migrator({ connectionString: incident.url })
    expect(await migrator.up()).toEqual([])
  })
})
