import { readFile, writeFile } from 'node:fs/promises'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { canonicalDefinition, schemaSnapshot } from '../../src/migrate/catalog.js'
import { SCHEMA_SNAPSHOT } from '../../src/migrate/loader.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { ADMIN_TOKEN, AUTH } from '../helpers/app.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

const SNAPSHOT = new URL(`../../migrations/${SCHEMA_SNAPSHOT}`, import.meta.url)

let db: TestDatabase
const databases: TestDatabase[] = []
/** A database of this file's, dropped after it. */
const database = async (template: 'empty' | 'incident') => {
  const created = await createTestDatabase(template)
  databases.push(created)
  return created
}
beforeAll(async () => {
  db = await database('empty')
})
afterAll(() => Promise.all(databases.map((d) => d.drop())))

// Drift is measured against this file, so it must be what the chain produces today.
// After changing the chain: UPDATE_SNAPSHOT=1 npx vitest run test/migrate/snapshot.test.ts
it('the committed schema snapshot is what the chain produces on an empty database', async () => {
  await new Migrator({ connectionString: db.url }).up()
  const actual = await withClient(db.url, schemaSnapshot)
  if (process.env.UPDATE_SNAPSHOT === '1') {
    await writeFile(SNAPSHOT, `${JSON.stringify(actual, null, 2)}\n`)
  }
  const committed = JSON.parse(await readFile(SNAPSHOT, 'utf8'))
  expect(actual).toEqual(committed)
})

// PostgreSQL's own round trip is the reference: what it prints for a definition read back
// from its printed text is what canonicalDefinition must make of both texts.
it('canonicalDefinition spells a CHECK as PostgreSQL prints it after a dump and restore, an index without its schema', async () => {
  const defs = await withClient(db.url, async (c) => {
    const def = async () =>
      (
        await c.query<{ def: string }>(
          `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'zz_kind_check'`,
        )
      ).rows[0]?.def ?? ''
    await c.query(
      `CREATE TABLE zz_canonical (kind varchar(20) CONSTRAINT zz_kind_check
         CHECK (kind IN ('it''s, (odd)', 'b', '')))`,
    )
    try {
      const created = await def()
      await c.query(
        `ALTER TABLE zz_canonical DROP CONSTRAINT zz_kind_check, ADD CONSTRAINT zz_kind_check ${created}`,
      )
      return { created, restored: await def() }
    } finally {
      await c.query('DROP TABLE zz_canonical')
    }
  })
  expect(defs.created).not.toBe(defs.restored)
  expect(canonicalDefinition(defs.created)).toBe(defs.restored)
  expect(canonicalDefinition(defs.restored)).toBe(defs.restored)
  // An index's table loses its schema, quoted or not; nothing else does.
  expect(
    canonicalDefinition('CREATE UNIQUE INDEX "a b" ON ONLY "my ""x"" schema".t USING btree (x)'),
  ).toBe('CREATE UNIQUE INDEX "a b" ON ONLY t USING btree (x)')
  expect(canonicalDefinition('CREATE INDEX ix ON club.players USING btree (last_name)')).toBe(
    'CREATE INDEX ix ON players USING btree (last_name)',
  )
  // Text that is not such an array is left alone.
  const other = "CHECK ((x = ANY (ARRAY[1, 2]))) WHERE (y)::text = 'a'::text"
  expect(canonicalDefinition(other)).toBe(other)
})

it('the chain run in a schema other than public matches the snapshot: no drift', async () => {
  const other = await database('empty')
  await withClient(other.url, (c) =>
    c.query(`CREATE SCHEMA club; ALTER DATABASE ${other.name} SET search_path = club`),
  )
  const migrator = new Migrator({ connectionString: other.url })
  await migrator.up()
  const tables = await withClient(other.url, async (c) => {
    const { rows } = await c.query<{ schema: string }>(
      "SELECT DISTINCT schemaname AS schema FROM pg_tables WHERE tablename = 'players'",
    )
    return rows.map((r) => r.schema)
  })
  expect(tables).toEqual(['club'])
  expect((await migrator.inspect()).drift).toEqual({ status: 'none', differences: [] })
})

// PostgreSQL 15's advice for the public schema: a schema named after the role, which the
// default search_path ("$user", public) puts first. Tables created there would shadow
// the club's tables in public for every unqualified query.
it('a schema named after the role does not get a second, empty copy of the chain', async () => {
  const incident = await database('incident')
  const players = `SELECT count(*)::int AS n FROM players`
  const before = await withClient(incident.url, async (c) => (await c.query(players)).rows[0].n)
  expect(before).toBeGreaterThan(0)
  await withClient(incident.url, (c) => c.query('CREATE SCHEMA AUTHORIZATION CURRENT_USER'))
  const migrator = new Migrator({ connectionString: incident.url })
  await migrator.up()
  // A later release: the ledger found in public, not a new one in the role's schema.
  await withClient(incident.url, (c) =>
    c.query("DELETE FROM schema_migrations WHERE name = '022_merge_heads'"),
  )
  expect(await new Migrator({ connectionString: incident.url }).up()).toEqual(['022_merge_heads'])
  const found = await withClient(incident.url, async (c) => ({
    inRoleSchema: (
      await c.query<{ name: string }>(
        'SELECT relname AS name FROM pg_class WHERE relnamespace = current_user::regnamespace',
      )
    ).rows.map((r) => r.name),
    players: (await c.query(players)).rows[0].n,
    ledger: (await c.query('SELECT count(*)::int AS n FROM public.schema_migrations')).rows[0].n,
  }))
  expect(found).toEqual({ inRoleSchema: [], players: before, ledger: 23 })
  expect((await migrator.inspect()).drift).toEqual({ status: 'none', differences: [] })
})

// The same with the stale stamp dropped by hand and no ledger yet: the club's tables
// (players and teams side by side in public) tell where the chain belongs.
it('a schema named after the role, and no stamp or ledger: the chain finds the club in public', async () => {
  const incident = await database('incident')
  const players = `SELECT count(*)::int AS n FROM public.players`
  const before = await withClient(incident.url, async (c) => (await c.query(players)).rows[0].n)
  expect(before).toBeGreaterThan(0)
  await withClient(incident.url, (c) =>
    c.query('CREATE SCHEMA AUTHORIZATION CURRENT_USER; DROP TABLE public.alembic_version'),
  )
  const migrator = new Migrator({ connectionString: incident.url })
  expect(await migrator.up()).toHaveLength(23)
  const found = await withClient(incident.url, async (c) => ({
    inRoleSchema: (
      await c.query<{ name: string }>(
        'SELECT relname AS name FROM pg_class WHERE relnamespace = current_user::regnamespace',
      )
    ).rows.map((r) => r.name),
    // Read as the service reads it: unqualified, on the default search_path.
    players: (await c.query('SELECT count(*)::int AS n FROM players')).rows[0].n,
    ledger: (await c.query('SELECT count(*)::int AS n FROM public.schema_migrations')).rows[0].n,
  }))
  expect(found).toEqual({ inRoleSchema: [], players: before, ledger: 23 })
  expect((await migrator.inspect()).drift).toEqual({ status: 'none', differences: [] })
})

// A copy of the club's tables kept in the role's schema (a backup before a hand fix), and
// the empty ledger a first run that failed there left behind: neither is the club.
it.each([
  // Empty, so that which one requests read shows.
  ['an empty copy of players', 'CREATE TABLE players (LIKE public.players INCLUDING ALL)'],
  [
    'copies of players and teams, and an empty ledger',
    `CREATE TABLE players AS SELECT * FROM public.players WHERE id < 3;
     CREATE TABLE teams AS SELECT * FROM public.teams;
     CREATE TABLE schema_migrations (name text PRIMARY KEY, checksum text NOT NULL)`,
  ],
])(
  'a schema named after the role holding %s: the chain still migrates public, and requests read it',
  async (_what, copies) => {
    const incident = await database('incident')
    const before = await withClient(incident.url, async (c) => ({
      players: (await c.query('SELECT count(*)::int AS n FROM public.players')).rows[0].n,
    }))
    const inRoleSchema = async () =>
      withClient(incident.url, async (c) =>
        (
          await c.query<{ name: string }>(
            'SELECT relname AS name FROM pg_class WHERE relnamespace = current_user::regnamespace AND relkind = $1 ORDER BY 1',
            ['r'],
          )
        ).rows.map((r) => r.name),
      )
    await withClient(incident.url, (c) =>
      c.query(`CREATE SCHEMA AUTHORIZATION CURRENT_USER; SET search_path = "$user"; ${copies}`),
    )
    const copied = await inRoleSchema()
    const migrator = new Migrator({ connectionString: incident.url })
    expect(await migrator.up()).toHaveLength(23)
    const found = await withClient(incident.url, async (c) => ({
      ledger: (await c.query('SELECT count(*)::int AS n FROM public.schema_migrations')).rows[0].n,
      rosters: (await c.query("SELECT to_regclass('public.player_teams') IS NOT NULL AS t")).rows[0]
        .t,
    }))
    expect(found).toEqual({ ledger: 23, rosters: true })
    // The copies are left as they were, and nothing was added beside them.
    expect(await inRoleSchema()).toEqual(copied)
    expect((await migrator.inspect()).drift).toEqual({ status: 'none', differences: [] })
    // The request pool reads the club too (its sessions get the same search_path).
    const t = await buildApp({
      config: loadConfig({ DATABASE_URL: incident.url, ADMIN_TOKEN, LOG_LEVEL: 'silent' }),
      databaseUrl: incident.url,
      adminToken: ADMIN_TOKEN,
      logger: false,
    })
    try {
      await t.ready()
      await t.migrations.supervisor.settled()
      const res = await t.inject({ url: '/players?limit=100', headers: AUTH })
      expect(res.statusCode).toBe(200)
      expect(res.json().items).toHaveLength(Math.min(100, before.players))
      // Each player with its roster entries: read from public.player_teams.
      expect(res.json().items.some((p: { teams: unknown[] }) => p.teams.length > 0)).toBe(true)
    } finally {
      await t.close()
    }
  },
)

// ...and only then: another application's tables further along the search_path are left
// alone, whatever they are called.
it.each([
  ['an Alembic stamp', 'CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY)'],
  [
    'a Rails-style schema_migrations',
    'CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY)',
  ],
])(
  'another application in public with %s: the chain stays in the current schema',
  async (_what, theirs) => {
    const other = await database('empty')
    await withClient(other.url, (c) =>
      c.query(`CREATE SCHEMA club; ALTER DATABASE ${other.name} SET search_path = club, public;
             ${theirs};
             CREATE TABLE public.users (id serial PRIMARY KEY, email text, display_name text)`),
    )
    const migrator = new Migrator({ connectionString: other.url })
    expect(await migrator.up()).toHaveLength(23)
    const found = await withClient(other.url, async (c) => ({
      club: Number(
        (await c.query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'club'")).rows[0].n,
      ),
      theirUsers: (
        await c.query(
          "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) AS cols FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users'",
        )
      ).rows[0].cols,
    }))
    expect(found).toEqual({ club: 12, theirUsers: 'id,email,display_name' })
    expect((await migrator.inspect()).drift).toEqual({ status: 'none', differences: [] })
  },
)

it('a schema whose name needs quoting ("Club Data") holds the chain with no drift', async () => {
  const other = await database('empty')
  await withClient(other.url, (c) =>
    c.query(
      `CREATE SCHEMA "Club Data"; ALTER DATABASE ${other.name} SET search_path = "Club Data"`,
    ),
  )
  const migrator = new Migrator({ connectionString: other.url })
  expect(await migrator.up()).toHaveLength(23)
  expect(await migrator.up()).toEqual([])
  expect((await migrator.inspect()).drift).toEqual({ status: 'none', differences: [] })
})
