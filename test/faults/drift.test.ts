import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { schemaSnapshot } from '../../src/migrate/catalog.js'
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js'
import { withClient } from '../helpers/postgres.js'

/**
 * Schema drift: someone changes the schema by hand. The service measures the
 * live schema against migrations/schema.snapshot.json and reports it; drift is
 * a warning for the admin, never a reason to stop being ready.
 */
describe('a schema changed by hand', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it('starts without drift', async () => {
    const report = await t.app.inject({ url: '/migrations', headers: AUTH })
    expect(report.json().drift).toEqual({ status: 'none', differences: [] })
    expect((await t.app.inject({ url: '/health' })).json().status).toBe('pass')
  })

  it('a dropped index shows in /migrations drift by name; /health warns (200); ready stays 200', async () => {
    await withClient(t.db.url, (c) => c.query('DROP INDEX ix_players_last_first'))
    const report = await t.app.inject({ url: '/migrations', headers: AUTH })
    expect(report.statusCode).toBe(200)
    const { drift } = report.json()
    expect(drift.status).toBe('drift')
    expect(drift.differences).toEqual([
      'missing index: CREATE INDEX ix_players_last_first ON public.players USING btree (last_name, first_name)',
    ])

    const health = await t.app.inject({ url: '/health' })
    expect(health.statusCode).toBe(200)
    const h = health.json()
    expect(h.status).toBe('warn')
    expect(h.checks['migrations:drift'][0]).toMatchObject({
      status: 'warn',
      observedValue: 'drift',
    })
    // The differences are for the admin only.
    expect(JSON.stringify(h)).not.toMatch(/ix_players_last_first/)
    const admin = (await t.app.inject({ url: '/health', headers: AUTH })).json()
    expect(admin.checks['migrations:drift'][0].output).toMatch(/ix_players_last_first/)

    const ready = await t.app.inject({ url: '/health/ready' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({ status: 'pass' })
  })

  it('a column added by hand is named too, next to the missing index', async () => {
    await withClient(t.db.url, (c) => c.query('ALTER TABLE players ADD COLUMN shoe_size smallint'))
    const { drift } = (await t.app.inject({ url: '/migrations', headers: AUTH })).json()
    expect(drift.status).toBe('drift')
    expect(drift.differences).toContain('unexpected column: players.shoe_size smallint')
    expect(drift.differences.some((d: string) => d.includes('ix_players_last_first'))).toBe(true)
    expect((await t.app.inject({ url: '/health/ready' })).statusCode).toBe(200)
  })

  it('repaired by hand, the drift clears', async () => {
    await withClient(t.db.url, (c) =>
      c.query(
        'ALTER TABLE players DROP COLUMN shoe_size; CREATE INDEX ix_players_last_first ON players (last_name, first_name)',
      ),
    )
    const { drift } = (await t.app.inject({ url: '/migrations', headers: AUTH })).json()
    expect(drift).toEqual({ status: 'none', differences: [] })
    expect((await t.app.inject({ url: '/health' })).json().status).toBe('pass')
  })

  it('a restore from pg_dump is not drift, though PostgreSQL prints some definitions differently after it', async () => {
    // pg_dump writes every CHECK constraint and index as the catalog prints it. Read back,
    // `CHECK (status IN ('a', 'b'))` on a varchar column prints with the casts inside the
    // array instead of around it: the same constraint, different text.
    const { before, after } = await withClient(t.db.url, async (c) => {
      const before = await schemaSnapshot(c)
      const checks = await c.query<{ tbl: string; name: string; def: string }>(
        `SELECT conrelid::regclass::text AS tbl, conname AS name, pg_get_constraintdef(oid) AS def
           FROM pg_constraint
          WHERE contype = 'c' AND connamespace = current_schema()::regnamespace`,
      )
      for (const k of checks.rows) {
        await c.query(
          `ALTER TABLE ${k.tbl} DROP CONSTRAINT ${k.name}, ADD CONSTRAINT ${k.name} ${k.def}`,
        )
      }
      const indexes = await c.query<{ name: string; def: string }>(
        `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
          WHERE t.relnamespace = current_schema()::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`,
      )
      for (const i of indexes.rows) await c.query(`DROP INDEX ${i.name}; ${i.def}`)
      return { before, after: await schemaSnapshot(c) }
    })
    // The round trip did change how PostgreSQL prints the schema...
    expect(after.constraints).not.toEqual(before.constraints)
    // ...and the service still finds the schema the chain produces.
    const { drift } = (await t.app.inject({ url: '/migrations', headers: AUTH })).json()
    expect(drift).toEqual({ status: 'none', differences: [] })
    expect((await t.app.inject({ url: '/health' })).json().status).toBe('pass')
  })

  it("a table an extension owns is the extension's, not drift", async () => {
    // What PostGIS leaves in public (spatial_ref_sys, its key and a check): a member of
    // its extension. Made a member by hand here, with an extension every build ships.
    const add = `CREATE EXTENSION IF NOT EXISTS amcheck;
      CREATE TABLE spatial_ref_sys (srid integer PRIMARY KEY CHECK (srid > 0), auth_name varchar(256));
      CREATE INDEX spatial_ref_sys_auth ON spatial_ref_sys (auth_name)`
    await withClient(t.db.url, (c) => c.query(add))
    const owned = async () =>
      (await t.app.inject({ url: '/migrations', headers: AUTH })).json().drift.differences
    // Not yet the extension's: every part of it is named.
    expect(await owned()).toEqual(
      expect.arrayContaining([
        'unexpected column: spatial_ref_sys.srid integer not null',
        expect.stringMatching(/^unexpected constraint: spatial_ref_sys spatial_ref_sys_srid_check/),
        expect.stringMatching(/^unexpected index: CREATE INDEX spatial_ref_sys_auth /),
      ]),
    )
    await withClient(t.db.url, (c) => c.query('ALTER EXTENSION amcheck ADD TABLE spatial_ref_sys'))
    expect(await owned()).toEqual([])
    await withClient(t.db.url, (c) =>
      c.query(
        'ALTER EXTENSION amcheck DROP TABLE spatial_ref_sys; DROP TABLE spatial_ref_sys; DROP EXTENSION amcheck',
      ),
    )
  })
})
