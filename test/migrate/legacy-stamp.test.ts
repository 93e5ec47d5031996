import pg from 'pg'
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

  it("another application's stamp elsewhere on the search_path vouches for nothing", async () => {
    const db = await incidentWith(`
      DROP TABLE alembic_version;
      CREATE SCHEMA reporting;
      CREATE TABLE reporting.alembic_version (version_num varchar(32) PRIMARY KEY);
      INSERT INTO reporting.alembic_version VALUES ('018');
      DO $$ BEGIN
        EXECUTE format('ALTER DATABASE %I SET search_path = public, reporting', current_database());
      END $$`)
    const rows = await outcomes(db.url)
    expect(rows['001_initial_schema']?.outcome).toBe('already-present')
    expect(rows['018_registration_waiver']?.outcome).toBe('already-present')
  })

  it('a number the chain does not have (another numbering) vouches for nothing', async () => {
    for (const stamp of ['0042_rollups', '999999999']) {
      const db = await incidentWith(`UPDATE alembic_version SET version_num = '${stamp}'`)
      const rows = await outcomes(db.url)
      expect(rows['001_initial_schema']?.outcome, stamp).toBe('already-present')
      expect(rows['020_custom_notes']?.outcome, stamp).toBe('already-present')
    }
  })

  it('a session holding the stamp table fails the run within lock_timeout instead of stalling it', async () => {
    const db = await incidentWith('SELECT 1')
    const holder = new pg.Client(db.url)
    await holder.connect()
    try {
      await holder.query('BEGIN; LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE')
      const migrator = new Migrator({ connectionString: db.url, lockTimeoutMs: 300 })
      await expect(migrator.up()).rejects.toMatchObject({ code: '55P03' })
      expect(migrator.view()).toMatchObject({ state: 'failed', lastError: { code: '55P03' } })
      await holder.query('ROLLBACK')
      const rows = await outcomes(db.url)
      expect(rows['001_initial_schema']?.outcome).toBe('baseline')
    } finally {
      await holder.end()
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
