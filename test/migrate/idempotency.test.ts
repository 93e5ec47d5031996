import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type SchemaSnapshot, schemaSnapshot } from '../../src/migrate/catalog.js'
import { builtInMigrationsDir, loadMigrations } from '../../src/migrate/loader.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { createSchemaHelpers } from '../../src/migrate/schema-helpers.js'
import type { Change, LoadedMigration, Query } from '../../src/migrate/types.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

// Every case here is generated from the chain on disk: a migration added later is
// covered the day it is added, with no test written for it.
const chain: LoadedMigration[] = await loadMigrations(builtInMigrationsDir())
const names = chain.map((m) => m.name)
const byName = new Map(chain.map((m) => [m.name, m]))

type Row = Record<string, unknown>

/** Every row of every table (but the ledger). */
async function allRows(client: pg.Client): Promise<Map<string, Row[]>> {
  const tables = await client.query<{ t: string }>(
    `SELECT relname AS t FROM pg_class
      WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
        AND relname NOT IN ('schema_migrations') ORDER BY 1`,
  )
  const out = new Map<string, Row[]>()
  for (const { t } of tables.rows) {
    out.set(
      t,
      (await client.query<{ j: Row }>(`SELECT to_jsonb(x) AS j FROM "${t}" x`)).rows.map(
        (r) => r.j,
      ),
    )
  }
  return out
}

/** A row as text, over the given columns only (a migration may add columns, never change values). */
const rowKey = (row: Row, columns: string[]) => JSON.stringify(columns.map((c) => row[c]))

/** Asserts that every row present before is still there with the same values. */
function expectNoRowLost(before: Map<string, Row[]>, after: Map<string, Row[]>) {
  for (const [table, rows] of before) {
    if (rows.length === 0) continue
    const columns = Object.keys(rows[0] ?? {}).sort()
    const now = new Set((after.get(table) ?? []).map((r) => rowKey(r, columns)))
    const lost = rows.filter((r) => !now.has(rowKey(r, columns)))
    expect(lost, `rows lost or changed in ${table}`).toEqual([])
  }
}

/** Applies a migration by hand, outside the engine and its ledger: "applied but not stamped". */
async function applyByHand(client: pg.Client, name: string) {
  const m = byName.get(name)
  if (!m) throw new Error(`no migration ${name}`)
  const query: Query = (text, values) => client.query(text, values)
  const changes: Change[] = []
  await (await m.load()).up({ name, context: { query, ...createSchemaHelpers(query, changes) } })
}

const ledgerOf = (url: string) => new Migrator({ connectionString: url }).ledger()

let reference: SchemaSnapshot
const databases: TestDatabase[] = []
const database = async (template: 'empty' | 'incident') => {
  const db = await createTestDatabase(template)
  databases.push(db)
  return db
}

beforeAll(async () => {
  const fresh = await database('empty')
  await new Migrator({ connectionString: fresh.url }).up()
  reference = await withClient(fresh.url, schemaSnapshot)
})
afterAll(async () => {
  await Promise.all(databases.map((d) => d.drop()))
})

describe('each migration, step by step on an empty database', () => {
  it.each(names)(
    '%s: run again after its ledger row is lost ends in the same state',
    async (name) => {
      const db = await database('empty')
      const migrator = new Migrator({ connectionString: db.url })
      expect(await migrator.up({ to: name })).toEqual(names.slice(0, names.indexOf(name) + 1))
      const [schema, rows] = await withClient(
        db.url,
        async (c) => [await schemaSnapshot(c), await allRows(c)] as const,
      )

      await withClient(db.url, (c) =>
        c.query('DELETE FROM schema_migrations WHERE name = $1', [name]),
      )
      expect(await new Migrator({ connectionString: db.url }).up({ to: name })).toEqual([name])

      await withClient(db.url, async (c) => {
        expect(await schemaSnapshot(c)).toEqual(schema)
        expectNoRowLost(rows, await allRows(c))
      })
      const row = (await ledgerOf(db.url)).find((r) => r.name === name)
      // Found everything in place, or (022) had nothing to change.
      expect(row?.outcome).toBe('already-present')
    },
  )
})

describe('each migration, run again on the fully migrated incident database', () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await database('incident')
    await new Migrator({ connectionString: db.url }).up()
  })

  it.each(names)('%s: finds everything in place and loses nothing', async (name) => {
    const before = await withClient(db.url, allRows)
    await withClient(db.url, (c) =>
      c.query('DELETE FROM schema_migrations WHERE name = $1', [name]),
    )
    const migrator = new Migrator({ connectionString: db.url })
    expect(await migrator.up()).toEqual([name])
    await withClient(db.url, async (c) => {
      expect(await schemaSnapshot(c)).toEqual(reference)
      expectNoRowLost(before, await allRows(c))
    })
    const row = (await migrator.ledger()).find((r) => r.name === name)
    expect(row?.changes.every((c) => c.action === 'exists' || c.action === 'unchanged')).toBe(true)
  })
})

type State019 = 'absent' | 'half' | 'full'
interface Mix {
  m019: State019
  m020: boolean
  m021: boolean
  m023: boolean
}

/** Every valid mix of 019-023 applied by hand without a ledger row, on the incident database. */
function mixes(): Mix[] {
  const out: Mix[] = []
  for (const m019 of ['absent', 'half', 'full'] as const)
    for (const m020 of [false, true])
      for (const m021 of [false, true])
        for (const m023 of m019 === 'absent' ? [false] : [false, true])
          out.push({ m019, m020, m021, m023 })
  return out
}

const describeMix = (m: Mix) =>
  `019 ${m.m019}, 020 ${m.m020 ? 'applied' : 'absent'}, 021 ${m.m021 ? 'applied' : 'absent'}, 023 ${m.m023 ? 'applied' : 'absent'}`

describe('the incident and its cousins: 019-023 applied but not stamped, 019 half applied', () => {
  it.each(mixes().map((m) => [describeMix(m), m] as const))('%s', async (_label, mix) => {
    const db = await database('incident')
    const before = await withClient(db.url, async (c) => {
      if (!mix.m020) await c.query('ALTER TABLE players DROP COLUMN custom_notes')
      if (mix.m019 !== 'absent') await applyByHand(c, '019_player_teams')
      if (mix.m019 === 'half') await c.query('DROP INDEX ux_player_teams_team_jersey')
      if (mix.m021) await applyByHand(c, '021_oauth_tokens')
      if (mix.m023) await applyByHand(c, '023_jersey_backfill')
      return allRows(c)
    })

    const migrator = new Migrator({ connectionString: db.url })
    await migrator.up()
    expect(migrator.view().state).toBe('complete')
    expect(await migrator.pending()).toEqual([])

    const ledger = await migrator.ledger()
    const outcome = (n: string) => ledger.find((r) => r.name === n)?.outcome
    expect(outcome('019_player_teams')).toBe(mix.m019 === 'full' ? 'already-present' : 'ran')
    expect(outcome('020_custom_notes')).toBe(mix.m020 ? 'already-present' : 'ran')
    expect(outcome('021_oauth_tokens')).toBe(mix.m021 ? 'already-present' : 'ran')
    expect(outcome('023_jersey_backfill')).toBe(mix.m023 ? 'already-present' : 'ran')

    await withClient(db.url, async (c) => {
      expect(await schemaSnapshot(c)).toEqual(reference)
      expectNoRowLost(before, await allRows(c))
      const { rows } = await c.query<{ missing: string }>(
        `SELECT count(*) AS missing FROM players p
          WHERE p.team_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM player_teams pt WHERE pt.player_id = p.id AND pt.team_id = p.team_id)`,
      )
      expect(Number(rows[0]?.missing)).toBe(0)
      const hawks = await c.query(
        'SELECT player_id, jersey_number FROM player_teams WHERE team_id = 2 AND player_id IN (1, 2) ORDER BY 1',
      )
      expect(hawks.rows).toEqual([
        { player_id: 1, jersey_number: 23 },
        { player_id: 2, jersey_number: null },
      ])
    })
  })

  it('the whole schema with no ledger at all: every migration finds its work done', async () => {
    const db = await database('incident')
    await new Migrator({ connectionString: db.url }).up()
    const before = await withClient(db.url, async (c) => {
      await c.query('DROP TABLE schema_migrations')
      return allRows(c)
    })
    const migrator = new Migrator({ connectionString: db.url })
    expect(await migrator.up()).toEqual(names)
    for (const row of await migrator.ledger()) {
      // 001–018 are what the legacy stamp (018, left as it was) vouches for.
      expect(row.outcome, row.name).toBe(row.name < '019' ? 'baseline' : 'already-present')
    }
    await withClient(db.url, async (c) => {
      expect(await schemaSnapshot(c)).toEqual(reference)
      expectNoRowLost(before, await allRows(c))
    })
  })
})
