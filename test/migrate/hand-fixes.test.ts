import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Migrator } from '../../src/migrate/migrator.js'
import {
  columnClauses,
  constraintShape,
  createSchemaHelpers,
  identifiers,
  leftUnchecked,
  scanSql,
} from '../../src/migrate/schema-helpers.js'
import type { Change, Query } from '../../src/migrate/types.js'
import { writeChain } from '../helpers/chains.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

// Hand fixes that leave a different object under a name the chain checks for. A check
// by name alone called them "exists" (and the service ready with a roster that accepts
// two players wearing 23), or PostgreSQL refused with "already exists". Each either ends
// in the chain's schema or stops with an error that says which object is in the way.

const databases: TestDatabase[] = []
afterAll(async () => {
  await Promise.all(databases.map((d) => d.drop()))
})

async function database(template: 'empty' | 'incident', migrated = false) {
  const db = await createTestDatabase(template)
  databases.push(db)
  if (migrated) await runChain(db)
  return db
}

const sql = (db: TestDatabase, text: string) => withClient(db.url, (c) => c.query(text))

/** The built-in chain on `db`, by a migrator of its own. */
const runChain = (db: TestDatabase) => new Migrator({ connectionString: db.url }).up()

/** Runs the chain; returns what the named migration recorded, and the drift after. */
async function rerun(db: TestDatabase, name: string) {
  const migrator = new Migrator({ connectionString: db.url })
  expect(await migrator.up()).toEqual([name])
  const row = (await migrator.ledger()).find((r) => r.name === name)
  return { changes: row?.changes, drift: (await migrator.inspect()).drift }
}

const indexTable = async (db: TestDatabase, index: string) =>
  (
    await sql(
      db,
      `SELECT indrelid::regclass::text AS t, indisunique AS u FROM pg_index WHERE indexrelid = to_regclass('${index}')`,
    )
  ).rows[0] ?? null

describe('an object of a chain name, but not the chain object', () => {
  it("019's unique index on a table set aside by hand: refused by name, then built on player_teams", async () => {
    const db = await database('incident')
    await sql(
      db,
      `CREATE TABLE player_teams (player_id int, team_id int, jersey_number smallint);
       CREATE UNIQUE INDEX ux_player_teams_team_jersey ON player_teams (team_id, jersey_number)
        WHERE jersey_number IS NOT NULL;
       ALTER TABLE player_teams RENAME TO player_teams_set_aside`,
    )
    const migrator = new Migrator({ connectionString: db.url })
    await expect(migrator.up()).rejects.toThrow(
      'index ux_player_teams_team_jersey is needed on player_teams, but a unique index on player_teams_set_aside (team_id, jersey_number) has that name: rename or drop it by hand',
    )
    expect(migrator.view().lastError).toMatchObject({ migration: '019_player_teams' })
    // Rolled back: no player_teams, no ledger row for 019.
    expect(await indexTable(db, 'player_teams')).toBeNull()
    expect((await migrator.ledger()).map((r) => r.name)).not.toContain('019_player_teams')

    await sql(db, 'ALTER INDEX ux_player_teams_team_jersey RENAME TO ux_set_aside')
    await runChain(db)
    expect(await indexTable(db, 'ux_player_teams_team_jersey')).toEqual({
      t: 'player_teams',
      u: true,
    })
  })

  it("a set-aside table's primary key holds the new table's key name: refused by name", async () => {
    const db = await database('incident')
    await sql(
      db,
      `CREATE TABLE player_teams (player_id int, team_id int, PRIMARY KEY (player_id, team_id));
       ALTER TABLE player_teams RENAME TO player_teams_set_aside`,
    )
    await expect(runChain(db)).rejects.toThrow(
      "player_teams_pkey is needed for a key of table player_teams, but a constraint's index on player_teams_set_aside (player_id, team_id) has that name",
    )
  })

  it('a view where a table belongs: refused, not skipped by IF NOT EXISTS', async () => {
    const db = await database('incident')
    await sql(db, 'CREATE VIEW oauth_tokens AS SELECT 1 AS id')
    await expect(runChain(db)).rejects.toThrow(
      'oauth_tokens is needed for the table, but a view has that name',
    )
  })

  it('a unique index in place of a unique constraint becomes the constraint', async () => {
    const db = await database('empty', true)
    await sql(
      db,
      `ALTER TABLE coaches DROP CONSTRAINT coaches_user_id_key;
       CREATE UNIQUE INDEX coaches_user_id_key ON coaches (user_id);
       DELETE FROM schema_migrations WHERE name = '013_coach_user_link'`,
    )
    const { changes, drift } = await rerun(db, '013_coach_user_link')
    expect(changes).toContainEqual({
      object: 'coaches_user_id_key',
      action: 'repaired',
      detail: { fromIndex: 'coaches_user_id_key' },
    })
    expect(drift).toEqual({ status: 'none', differences: [] })
  })

  it('an index of the constraint name on other columns: refused by name', async () => {
    const db = await database('empty', true)
    await sql(
      db,
      `ALTER TABLE coaches DROP CONSTRAINT coaches_user_id_key;
       CREATE UNIQUE INDEX coaches_user_id_key ON coaches (user_id, email);
       DELETE FROM schema_migrations WHERE name = '013_coach_user_link'`,
    )
    await expect(runChain(db)).rejects.toThrow(
      'coaches_user_id_key is needed for a unique constraint on coaches (user_id), but a unique index on coaches (user_id, email) has that name',
    )
  })

  it('a primary key named by hand is renamed; one on other columns is refused', async () => {
    const db = await database('empty', true)
    await sql(
      db,
      `ALTER TABLE games RENAME CONSTRAINT games_pkey TO pk_games;
       DELETE FROM schema_migrations WHERE name = '004_games'`,
    )
    const { changes, drift } = await rerun(db, '004_games')
    expect(changes).toContainEqual({
      object: 'games_pkey',
      action: 'repaired',
      detail: { renamedFrom: 'pk_games' },
    })
    expect(drift).toEqual({ status: 'none', differences: [] })

    await sql(
      db,
      `ALTER TABLE games DROP CONSTRAINT games_pkey;
       ALTER TABLE games ADD CONSTRAINT pk_games PRIMARY KEY (id, team_id);
       DELETE FROM schema_migrations WHERE name = '004_games'`,
    )
    await expect(runChain(db)).rejects.toThrow(
      "games already has a primary key, pk_games on (id, team_id), not the chain's games_pkey on (id)",
    )
  })

  it('an index of the chain name without its uniqueness, or on other columns, is rebuilt', async () => {
    const db = await database('empty', true)
    await sql(
      db,
      `DROP INDEX ux_player_teams_team_jersey;
       CREATE INDEX ux_player_teams_team_jersey ON player_teams (team_id, jersey_number)
        WHERE jersey_number IS NOT NULL;
       DELETE FROM schema_migrations WHERE name = '019_player_teams'`,
    )
    const unique = await rerun(db, '019_player_teams')
    expect(unique.changes).toContainEqual({
      object: 'ux_player_teams_team_jersey',
      action: 'repaired',
    })
    expect(unique.drift).toEqual({ status: 'none', differences: [] })
    expect(await indexTable(db, 'ux_player_teams_team_jersey')).toEqual({
      t: 'player_teams',
      u: true,
    })

    await sql(
      db,
      `DROP INDEX ix_games_team_starts;
       CREATE INDEX ix_games_team_starts ON games (starts_at);
       DELETE FROM schema_migrations WHERE name = '017_games_team_starts_index'`,
    )
    const columns = await rerun(db, '017_games_team_starts_index')
    expect(columns.changes).toContainEqual({ object: 'ix_games_team_starts', action: 'repaired' })
    expect(columns.drift).toEqual({ status: 'none', differences: [] })
  })

  it("another tool's schema_migrations: refused with a message that says so", async () => {
    const db = await database('incident')
    await sql(
      db,
      'CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)',
    )
    const migrator = new Migrator({ connectionString: db.url })
    await expect(migrator.up()).rejects.toThrow(
      /^schema_migrations exists but is not this service's ledger \(column "name" does not exist\): another migration tool's table\? Rename it/,
    )
    await sql(db, 'ALTER TABLE schema_migrations RENAME TO golang_schema_migrations')
    expect(await runChain(db)).toHaveLength(23)
  })

  it('a column added by hand without its NOT NULL and DEFAULT gets both; NULLs stop the run', async () => {
    const db = await database('empty', true)
    const strip = `ALTER TABLE teams ALTER COLUMN is_active DROP NOT NULL, ALTER COLUMN is_active DROP DEFAULT;
       DELETE FROM schema_migrations WHERE name = '016_team_is_active'`
    await sql(db, strip)
    const { changes, drift } = await rerun(db, '016_team_is_active')
    expect(changes).toEqual([
      { object: 'teams.is_active', action: 'repaired', detail: { set: ['default', 'not null'] } },
    ])
    expect(drift).toEqual({ status: 'none', differences: [] })

    await sql(db, strip)
    await sql(
      db,
      "INSERT INTO teams (name, age_group, season, is_active) VALUES ('Nulls', 'U10', '2026', NULL)",
    )
    await expect(runChain(db)).rejects.toThrow(
      'teams.is_active exists without NOT NULL and 1 rows hold NULL there; the chain defines it as "boolean NOT NULL DEFAULT true": set those rows by hand',
    )
    await sql(db, 'UPDATE teams SET is_active = false WHERE is_active IS NULL')
    expect((await rerun(db, '016_team_is_active')).drift).toEqual({
      status: 'none',
      differences: [],
    })
  })
})

describe('a constraint or index of the chain name, compared by what it says', () => {
  it('a CHECK or foreign key added NOT VALID is validated; rows that break it stop the run at its migration', async () => {
    const db = await database('empty', true)
    const addNotValid = `ALTER TABLE players DROP CONSTRAINT players_jersey_number_check;
       ALTER TABLE players ADD CONSTRAINT players_jersey_number_check
         CHECK (jersey_number BETWEEN 0 AND 99) NOT VALID;
       DELETE FROM schema_migrations WHERE name = '006_player_jersey_number'`
    await sql(db, addNotValid)
    const { changes, drift } = await rerun(db, '006_player_jersey_number')
    expect(changes).toContainEqual({
      object: 'players_jersey_number_check',
      action: 'repaired',
      detail: { validated: true },
    })
    expect(drift).toEqual({ status: 'none', differences: [] })

    await sql(
      db,
      `ALTER TABLE players DROP CONSTRAINT players_jersey_number_check;
       INSERT INTO players (first_name, last_name, jersey_number) VALUES ('Big', 'Number', 150);
       ALTER TABLE players ADD CONSTRAINT players_jersey_number_check
         CHECK (jersey_number BETWEEN 0 AND 99) NOT VALID;
       ALTER TABLE teams DROP CONSTRAINT teams_head_coach_id_fkey;
       INSERT INTO teams (name, age_group, season, head_coach_id) VALUES ('Orphans', 'U10', '2026', 999);
       ALTER TABLE teams ADD CONSTRAINT teams_head_coach_id_fkey
         FOREIGN KEY (head_coach_id) REFERENCES coaches(id) ON DELETE SET NULL NOT VALID;
       DELETE FROM schema_migrations WHERE name IN ('003_team_head_coach', '006_player_jersey_number')`,
    )
    const migrator = new Migrator({ connectionString: db.url })
    // 003 first: its foreign key's orphan, named by PostgreSQL; not some later migration.
    await expect(migrator.up()).rejects.toMatchObject({ code: '23503' })
    expect(migrator.view().lastError).toMatchObject({
      migration: '003_team_head_coach',
      message: expect.stringContaining('teams_head_coach_id_fkey'),
    })
    await sql(db, 'UPDATE teams SET head_coach_id = NULL WHERE head_coach_id = 999')
    await expect(migrator.up()).rejects.toMatchObject({ code: '23514' })
    expect(migrator.view().lastError).toMatchObject({
      migration: '006_player_jersey_number',
      message: expect.stringContaining('players_jersey_number_check'),
    })
    await sql(db, 'UPDATE players SET jersey_number = NULL WHERE jersey_number = 150')
    expect(await runChain(db)).toEqual(['006_player_jersey_number'])
    const { rows } = await sql(
      db,
      "SELECT conname, convalidated FROM pg_constraint WHERE conname IN ('players_jersey_number_check', 'teams_head_coach_id_fkey') ORDER BY 1",
    )
    expect(rows).toEqual([
      { conname: 'players_jersey_number_check', convalidated: true },
      { conname: 'teams_head_coach_id_fkey', convalidated: true },
    ])
  })

  it('one of another kind, columns, condition or target: refused, naming both definitions', async () => {
    const db = await database('empty', true)
    const replace = (table: string, name: string, definition: string) =>
      `ALTER TABLE ${table} DROP CONSTRAINT ${name};
       ALTER TABLE ${table} ADD CONSTRAINT ${name} ${definition}`
    const gamesTeam = 'FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE CASCADE'
    // [table, constraint, migration, the chain's definition, a hand-made one, as printed]
    const cases = [
      [
        'coaches',
        'coaches_user_id_key',
        '013_coach_user_link',
        'UNIQUE (user_id)',
        'CHECK (user_id > 0)',
        'CHECK ((user_id > 0))',
      ],
      [
        'player_teams',
        'player_teams_pkey',
        '019_player_teams',
        'PRIMARY KEY (player_id, team_id)',
        'PRIMARY KEY (player_id)',
        'PRIMARY KEY (player_id)',
      ],
      [
        'games',
        'games_team_id_fkey',
        '004_games',
        gamesTeam,
        'FOREIGN KEY (team_id) REFERENCES teams(id)',
        'FOREIGN KEY (team_id) REFERENCES teams(id)',
      ],
      [
        'games',
        'games_team_id_fkey',
        '004_games',
        gamesTeam,
        'FOREIGN KEY (team_id) REFERENCES players(id) ON DELETE CASCADE',
        'FOREIGN KEY (team_id) REFERENCES players(id) ON DELETE CASCADE',
      ],
      [
        'games',
        'games_team_id_fkey',
        '004_games',
        gamesTeam,
        'FOREIGN KEY (team_id) REFERENCES teams(id) ON UPDATE CASCADE ON DELETE CASCADE DEFERRABLE',
        'FOREIGN KEY (team_id) REFERENCES teams(id) ON UPDATE CASCADE ON DELETE CASCADE DEFERRABLE',
      ],
    ] as const
    for (const [table, name, migration, chain, hand, printed] of cases) {
      await sql(
        db,
        `${replace(table, name, hand)}; DELETE FROM schema_migrations WHERE name = '${migration}'`,
      )
      await expect(runChain(db)).rejects.toThrow(
        `${name} on ${table} is "${printed}", not the chain's "${chain}": drop or change it by hand`,
      )
      await sql(db, replace(table, name, chain))
    }
    expect(await runChain(db)).toEqual(['004_games', '019_player_teams'])
  })

  it('definitions written another way than PostgreSQL prints them, or NOT VALID on purpose, re-run as already-present', async () => {
    const body = (definitions: string[]) =>
      [
        "await context.ensureTable('t_ref', { columns: { id: 'integer', code: 'text' }, constraints: { t_ref_pkey: 'PRIMARY KEY (id)', t_ref_code_key: 'UNIQUE (code)' } })",
        "await context.ensureTable('t_child', { columns: { ref_id: 'integer', code: 'text', n: 'integer' } })",
        `await context.query('ALTER TABLE t_child ADD COLUMN IF NOT EXISTS "We""ird" integer')`,
        ...definitions.map(
          (d, i) =>
            `await context.ensureConstraint('t_child', 't_child_c${i}', ${JSON.stringify(d)})`,
        ),
        "await context.ensureIndex('ix_t_child_n', { table: 't_child', definition: \"(n) WHERE code = 'x' AND n > 0\" })",
      ].join('\n')
    const dir = await writeChain({
      '001_styles': body([
        'FOREIGN KEY (ref_id) REFERENCES t_ref ON DELETE CASCADE',
        'foreign key (ref_id) references public.t_ref (id) on delete cascade on update cascade',
        'FOREIGN KEY (ref_id) REFERENCES "t_ref"(id) MATCH SIMPLE ON UPDATE NO ACTION ON DELETE SET NULL',
        'FOREIGN KEY (code) REFERENCES t_ref(code) DEFERRABLE INITIALLY DEFERRED',
        'CHECK (n >= 0) NOT VALID NO INHERIT',
        'FOREIGN KEY (ref_id) REFERENCES t_ref(id) NOT VALID',
        'UNIQUE (Code, N)',
        'FOREIGN KEY (REF_ID) REFERENCES T_REF(ID) MATCH FULL ON UPDATE CASCADE',
        'UNIQUE ("We""ird") DEFERRABLE INITIALLY DEFERRED',
      ]),
    })
    const db = await database('empty')
    const migrator = () => new Migrator({ connectionString: db.url, migrationsDir: dir })
    expect(await migrator().up()).toEqual(['001_styles'])
    // A row the NOT VALID check lets stay (it was there before the check): the chain says
    // so, and a re-run must not validate it away.
    await sql(db, 'ALTER TABLE t_child DROP CONSTRAINT t_child_c4')
    await sql(db, 'INSERT INTO t_child (ref_id, code, n) VALUES (NULL, NULL, -1)')
    await sql(
      db,
      'ALTER TABLE t_child ADD CONSTRAINT t_child_c4 CHECK (n >= 0) NOT VALID NO INHERIT',
    )
    await sql(db, 'DELETE FROM schema_migrations')
    const again = migrator()
    expect(await again.up()).toEqual(['001_styles'])
    const [row] = await again.ledger()
    expect(row?.changes.filter((c) => c.action !== 'exists')).toEqual([])
    expect(row?.outcome).toBe('already-present')
  })

  it('a partial unique index on other rows is rebuilt as the chain defines it', async () => {
    const db = await database('empty', true)
    await sql(
      db,
      `DROP INDEX ux_player_teams_team_jersey;
       CREATE UNIQUE INDEX ux_player_teams_team_jersey ON player_teams (team_id, jersey_number)
        WHERE role = 'captain';
       DELETE FROM schema_migrations WHERE name = '019_player_teams'`,
    )
    const { changes, drift } = await rerun(db, '019_player_teams')
    expect(changes).toContainEqual({ object: 'ux_player_teams_team_jersey', action: 'repaired' })
    expect(drift).toEqual({ status: 'none', differences: [] })
    const { rows } = await sql(
      db,
      "SELECT pg_get_expr(indpred, indrelid) AS predicate FROM pg_index WHERE indexrelid = 'ux_player_teams_team_jersey'::regclass",
    )
    expect(rows).toEqual([{ predicate: '(jersey_number IS NOT NULL)' }])
  })

  it('every constraint and index as a pg_dump restore prints them, ledger lost: all already-present', async () => {
    const db = await database('empty', true)
    // What a restore does: each CHECK and index re-created from its printed definition
    // (three varchar IN (...) checks then print another way), and here no ledger.
    await sql(
      db,
      `DO $$
       DECLARE r record;
       BEGIN
         FOR r IN SELECT conrelid::regclass AS t, conname, pg_get_constraintdef(oid) AS def
                    FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace LOOP
           EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
           EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.t, r.conname, r.def);
         END LOOP;
         FOR r IN SELECT c.relname, pg_get_indexdef(c.oid) AS def FROM pg_index i
                    JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE c.relnamespace = 'public'::regnamespace
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) LOOP
           EXECUTE format('DROP INDEX %I', r.relname);
           EXECUTE r.def;
         END LOOP;
       END $$;
       DROP TABLE schema_migrations`,
    )
    const migrator = new Migrator({ connectionString: db.url })
    expect(await migrator.up()).toHaveLength(23)
    const outcomes = new Set((await migrator.ledger()).map((r) => r.outcome))
    expect(outcomes).toEqual(new Set(['already-present']))
  })
})

describe('what a constraint definition asks for', () => {
  it('folds identifiers as PostgreSQL does and reads keys, targets, actions and deferrability', () => {
    expect(identifiers('a, "B", C, "x,""y"')).toEqual(['a', 'B', 'c', 'x,"y'])
    expect(identifiers('"my.schema".Teams', '.')).toEqual(['my.schema', 'teams'])
    expect(constraintShape('PRIMARY KEY (Player_Id, team_id)')).toEqual({
      kind: 'p',
      columns: ['player_id', 'team_id'],
      deferrable: false,
      deferred: false,
      enforced: true,
    })
    expect(
      constraintShape(
        'foreign key (a) references "Other"."T"(id) match full on update set null on delete cascade deferrable initially deferred',
      ),
    ).toEqual({
      kind: 'f',
      columns: ['a'],
      references: { table: 'T', columns: ['id'], onDelete: 'c', onUpdate: 'n', match: 'f' },
      deferrable: true,
      deferred: true,
      enforced: true,
    })
    expect(constraintShape("CHECK (note <> 'NOT DEFERRABLE')")).toMatchObject({
      kind: 'c',
      deferrable: false,
    })
    expect(constraintShape('UNIQUE (a) NOT DEFERRABLE')).toMatchObject({ deferrable: false })
    expect(constraintShape('UNIQUE (a) INITIALLY DEFERRED')).toMatchObject({
      deferrable: true,
      deferred: true,
    })
    expect(constraintShape('NOT NULL a')).toBeNull()
    expect(constraintShape('UNIQUE USING INDEX ux_a')).toEqual({
      kind: 'u',
      deferrable: false,
      deferred: false,
      enforced: true,
    })
    expect(constraintShape('CHECK (a > 0) NOT ENFORCED')).toMatchObject({ enforced: false })
  })

  it('reads comments, dollar quotes and escape strings as PostgreSQL does', () => {
    expect(
      constraintShape(
        'FOREIGN KEY (team_id) REFERENCES teams (id)\n  -- was ON DELETE CASCADE until 2023\n  ON DELETE RESTRICT /* ON UPDATE CASCADE? not yet */',
      ),
    ).toMatchObject({ references: { table: 'teams', onDelete: 'r', onUpdate: 'a' } })
    for (const check of [
      'CHECK (points >= 0) -- a CHECK cannot be DEFERRABLE',
      'CHECK (note <> $$DEFERRABLE$$)',
      'CHECK (note <> $x$INITIALLY DEFERRED$x$)',
      "CHECK (note <> E'\\' INITIALLY DEFERRED ')",
    ]) {
      expect(constraintShape(check), check).toMatchObject({ kind: 'c', deferrable: false })
    }
    expect(constraintShape('-- one row per id\nUNIQUE (id)')).toMatchObject({
      kind: 'u',
      columns: ['id'],
    })
    expect(
      constraintShape('FOREIGN KEY(team_id)REFERENCES"teams"(id) ON DELETE CASCADE'),
    ).toMatchObject({
      columns: ['team_id'],
      references: { table: 'teams', columns: ['id'], onDelete: 'c' },
    })
    expect(constraintShape('FOREIGN KEY (a) REFERENCES public . Teams')).toMatchObject({
      references: { table: 'teams' },
    })
    // PostgreSQL folds only ASCII letters of an unquoted identifier.
    expect(constraintShape('FOREIGN KEY (Ärger) REFERENCES teams (id)')).toMatchObject({
      columns: ['Ärger'],
    })
    expect(
      leftUnchecked("CHECK (points >= 0) -- old rows can't pass\n NOT VALID -- see 'BB-12'"),
    ).toBe(true)
    expect(leftUnchecked("CHECK (note <> $$'$$) NOT VALID -- it's legacy")).toBe(true)
    expect(leftUnchecked('CHECK (note <> $$NOT VALID$$)')).toBe(false)
    // A literal holding characters outside the BMP keeps the texts aligned.
    const emoji = "FOREIGN KEY (a) REFERENCES teams (id) /* 🏀🏀 */ ON DELETE CASCADE -- '🏀'"
    const scanned = scanSql(emoji)
    expect([scanned.code.length, scanned.masked.length]).toEqual([emoji.length, emoji.length])
    expect(constraintShape(emoji)).toMatchObject({ references: { table: 'teams', onDelete: 'c' } })
    expect(constraintShape("UNIQUE (a) -- '🏀' DEFERRABLE")).toMatchObject({ deferrable: false })
    expect(constraintShape('PRIMARY KEY ("🎉", b)')).toMatchObject({ columns: ['🎉', 'b'] })
    expect(leftUnchecked('CHECK (label <> $$🎉🎉🎉🎉$$) NOT VALID')).toBe(true)
    // Clauses of the definition, not words of its condition: columns named valid, enforced.
    expect(leftUnchecked('CHECK (NOT valid OR reason IS NOT NULL)')).toBe(false)
    expect(constraintShape('CHECK (NOT enforced OR waiver IS NOT NULL)')).toMatchObject({
      enforced: true,
    })
    expect(leftUnchecked('CHECK (café$x$ > 0) NOT VALID')).toBe(true)
    expect(leftUnchecked('CHECK (x <> $é$ NOT VALID $é$)')).toBe(false)
    expect(scanSql("E'abc\\").masked).toHaveLength("E'abc\\".length)
    expect(leftUnchecked("CHECK (note <> E'\\' NOT VALID ')")).toBe(false)
    expect(leftUnchecked('CHECK (points >= 0) -- never NOT VALID: small table')).toBe(false)
  })
})

describe('what a column definition asks of NOT NULL and DEFAULT', () => {
  it.each([
    ['boolean NOT NULL DEFAULT true', { notNull: true, defaultExpression: 'true' }],
    ['integer DEFAULT 0 NOT NULL', { notNull: true, defaultExpression: '0' }],
    ["varchar(20) NOT NULL DEFAULT 'pending'", { notNull: true, defaultExpression: "'pending'" }],
    // Keywords inside a literal are the literal's.
    ["text DEFAULT 'not null'", { notNull: false, defaultExpression: "'not null'" }],
    ["text DEFAULT 'check-in'", { notNull: false, defaultExpression: "'check-in'" }],
    [
      "varchar(10) DEFAULT coalesce(NULL, 'a')",
      { notNull: false, defaultExpression: "coalesce(NULL, 'a')" },
    ],
    // PostgreSQL stores no default for DEFAULT NULL: nothing to add.
    ['text DEFAULT NULL', { notNull: false, defaultExpression: null }],
    ['text', { notNull: false, defaultExpression: null }],
    // Not plain: left as found.
    ['integer GENERATED BY DEFAULT AS IDENTITY', null],
    ['text CHECK (email IS NOT NULL OR phone IS NOT NULL)', null],
    ['integer REFERENCES teams(id) NOT NULL', null],
  ])('%s', (definition, expected) => {
    expect(columnClauses(definition)).toEqual(expected)
  })
})

describe('the helpers on objects a hand fix or a later change touched', () => {
  /** Runs one helper call on a connection of its own; returns what it recorded. */
  const helpers =
    (db: TestDatabase) =>
    async (fn: (h: ReturnType<typeof createSchemaHelpers>) => Promise<unknown>) =>
      withClient(db.url, async (c) => {
        const changes: Change[] = []
        const query: Query = (text, values) => c.query(text, values)
        await fn(createSchemaHelpers(query, changes))
        return changes
      })

  it("a unique index a foreign key has come to reference is still the helper's own", async () => {
    const db = await database('empty')
    const run = helpers(db)
    await sql(db, 'CREATE TABLE t_ref (a int)')
    const ensure = (h: ReturnType<typeof createSchemaHelpers>) =>
      h.ensureIndex('ux_t_ref_a', { table: 't_ref', definition: '(a)', unique: true })
    expect(await run(ensure)).toEqual([{ object: 'ux_t_ref_a', action: 'created' }])
    await sql(db, 'CREATE TABLE t_child (a int REFERENCES t_ref (a))')
    expect(await run(ensure)).toEqual([{ object: 'ux_t_ref_a', action: 'exists' }])
  })

  it('an index of the chain name built with another access method is rebuilt', async () => {
    const db = await database('empty')
    const run = helpers(db)
    await sql(db, 'CREATE TABLE t_hash (a int); CREATE INDEX ix_t_hash_a ON t_hash USING hash (a)')
    const ensure = (h: ReturnType<typeof createSchemaHelpers>) =>
      h.ensureIndex('ix_t_hash_a', { table: 't_hash', definition: '(a)' })
    expect(await run(ensure)).toEqual([{ object: 'ix_t_hash_a', action: 'repaired' }])
    const { rows } = await sql(
      db,
      "SELECT amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.relname = 'ix_t_hash_a'",
    )
    expect(rows).toEqual([{ amname: 'btree' }])
    expect(await run(ensure)).toEqual([{ object: 'ix_t_hash_a', action: 'exists' }])
  })

  it("a hand-named primary key whose chain name another table's key holds: refused by name", async () => {
    const db = await database('empty', true)
    await sql(
      db,
      `CREATE TABLE games_old (id int CONSTRAINT games_pkey_tmp PRIMARY KEY);
       ALTER TABLE games RENAME CONSTRAINT games_pkey TO pk_games;
       ALTER TABLE games_old RENAME CONSTRAINT games_pkey_tmp TO games_pkey;
       DELETE FROM schema_migrations WHERE name = '004_games'`,
    )
    await expect(runChain(db)).rejects.toThrow(
      "games's primary key pk_games should be named games_pkey, but a constraint's index on games_old (id) has that name: rename or drop it by hand",
    )
  })

  it('a unique index of the constraint name that cannot become it (descending): refused by name', async () => {
    const db = await database('empty', true)
    await sql(
      db,
      `ALTER TABLE coaches DROP CONSTRAINT coaches_user_id_key;
       CREATE UNIQUE INDEX coaches_user_id_key ON coaches (user_id DESC);
       DELETE FROM schema_migrations WHERE name = '013_coach_user_link'`,
    )
    await expect(runChain(db)).rejects.toThrow(
      /^coaches_user_id_key is needed for a unique constraint on coaches \(user_id\), and the unique index of that name cannot become it \(.+\): rename or drop it by hand$/,
    )
  })

  it('a concurrent rebuild that fails on the data leaves the working index in place', async () => {
    const dir = await writeChain({
      '001_numbers':
        "await context.query('CREATE TABLE numbers (n int); INSERT INTO numbers VALUES (7), (7)')",
    })
    await writeFile(
      join(dir, '002_unique.mjs'),
      `export const transaction = false
export async function up({ context }) {
  await context.ensureIndex('ux_numbers', { table: 'numbers', definition: '(n)', unique: true, concurrently: true })
}\n`,
    )
    const db = await database('empty')
    const migrator = () => new Migrator({ connectionString: db.url, migrationsDir: dir })
    await migrator().up({ to: '001_numbers' })
    await sql(db, 'CREATE INDEX ux_numbers ON numbers (n)')
    await expect(migrator().up()).rejects.toMatchObject({ code: '23505' })
    const indexes = async () =>
      (
        await sql(
          db,
          "SELECT c.relname AS name, i.indisunique AS u, i.indisvalid AS v FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'numbers'::regclass ORDER BY 1",
        )
      ).rows
    expect(await indexes()).toEqual([{ name: 'ux_numbers', u: false, v: true }])
    await sql(db, 'DELETE FROM numbers WHERE ctid <> (SELECT min(ctid) FROM numbers)')
    expect(await migrator().up()).toEqual(['002_unique'])
    expect(await indexes()).toEqual([{ name: 'ux_numbers', u: true, v: true }])
  })
})
