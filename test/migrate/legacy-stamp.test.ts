import { afterEach, describe, expect, it } from 'vitest'
import { migrationNumber } from '../../src/migrate/ledger.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

// The legacy Alembic stamp is read, never trusted and never written: a migration it vouches
// for still runs its checks, and is `baseline` only when they found everything in place.

const opened: TestDatabase[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.drop()))
})

async function incidentWith(sql: string) {
  const db = await createTestDatabase('incident')
  opened.push(db)
  await withClient(db.url, (c) => c.query(sql))
  return db
}

async function outcomes(url: string) {
  const migrator = new Migrator({ connectionString: url })
  await migrator.up()
  return Object.fromEntries((await migrator.ledger()).map((r) => [r.name, r]))
}

describe('the legacy alembic_version stamp', () => {
  it('a stamp that lies: the object it vouches for is missing, so the migration creates it and ran', async () => {
    const db = await incidentWith('DROP INDEX ix_games_team_starts')
    const rows = await outcomes(db.url)
    expect(rows['017_games_team_starts_index']).toMatchObject({
      outcome: 'ran',
      changes: [{ object: 'ix_games_team_starts', action: 'created' }],
    })
    expect(rows['016_team_is_active']?.outcome).toBe('baseline')
    expect(rows['018_registration_waiver']?.outcome).toBe('baseline')
    const index = await withClient(db.url, (c) =>
      c.query("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_games_team_starts'"),
    )
    expect(index.rowCount).toBe(1)
  })

  it('vouches up to its number: a stamp of 010 leaves 011–018 already-present', async () => {
    const db = await incidentWith("UPDATE alembic_version SET version_num = '010'")
    const rows = await outcomes(db.url)
    expect(rows['010_practices']?.outcome).toBe('baseline')
    expect(rows['011_attendance']?.outcome).toBe('already-present')
    expect(rows['018_registration_waiver']?.outcome).toBe('already-present')
    expect(rows['020_custom_notes']?.outcome).toBe('already-present')
  })

  it('vouches for nothing when it is not a number, has no row, or is another shape', async () => {
    for (const sql of [
      "UPDATE alembic_version SET version_num = 'ae1027a6acf'",
      'DELETE FROM alembic_version',
      'DROP TABLE alembic_version; CREATE TABLE alembic_version (revision text); INSERT INTO alembic_version VALUES ($$018$$)',
    ]) {
      const db = await incidentWith(sql)
      const rows = await outcomes(db.url)
      expect(rows['001_initial_schema']?.outcome, sql).toBe('already-present')
      expect(rows['019_player_teams']?.outcome, sql).toBe('ran')
    }
  })

  it('a database without one (built by this service) has no baseline', async () => {
    const db = await createTestDatabase('empty')
    opened.push(db)
    const rows = await outcomes(db.url)
    await withClient(db.url, (c) => c.query('DROP TABLE schema_migrations'))
    const again = await outcomes(db.url)
    expect(rows['001_initial_schema']?.outcome).toBe('ran')
    expect(Object.values(rows).filter((r) => r.outcome === 'baseline')).toEqual([])
    expect(new Set(Object.values(again).map((r) => r.outcome))).toEqual(
      new Set(['already-present']),
    )
  })

  it('reads the number a migration name starts with', () => {
    expect(migrationNumber('018_registration_waiver')).toBe(18)
    expect(migrationNumber('m0001_bench')).toBeNull()
    expect(migrationNumber('2024_01_01_x')).toBe(2024)
  })
})
