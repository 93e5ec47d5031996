import { writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Migrator } from '../../src/migrate/migrator.js'
import { writeChain } from '../helpers/chains.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

// A transactional migration's BEGIN travels with its first statement when that
// statement has no parameters (src/migrate/migrator.ts, applyOnce): these tests pin
// what a migration must not be able to tell apart from a BEGIN of its own.

const databases: TestDatabase[] = []
afterEach(async () => {
  await Promise.all(databases.splice(0).map((d) => d.drop()))
})

async function emptyDatabase() {
  const db = await createTestDatabase('empty')
  databases.push(db)
  return db
}

const tableExists = (url: string, name: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [
      name,
    ])
    return rows[0]?.found !== null
  })

/**
 * Runs a one-migration chain of `lines` followed by a throw, expects the run to fail with
 * that error, `table` not to exist and no ledger row: everything the migration did rolled back.
 */
async function expectRolledBack(lines: string[], table: string) {
  const dir = await writeChain({
    '001_fails_late': [...lines, "throw new Error('failed after its statements')"].join('\n'),
  })
  const db = await emptyDatabase()
  const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
  await expect(migrator.up()).rejects.toThrow('failed after its statements')
  expect(await tableExists(db.url, table)).toBe(false)
  expect(await migrator.ledger()).toEqual([])
  return db
}

/** Applies a one-migration chain of `lines` on an empty database and returns the rows of `select`. */
async function applyAndRead(lines: string[], select: string, lockTimeoutMs?: number) {
  const dir = await writeChain({ '001_observe': lines.join('\n') })
  const db = await emptyDatabase()
  await new Migrator({ connectionString: db.url, migrationsDir: dir, lockTimeoutMs }).up()
  return withClient(db.url, async (c) => (await c.query(select)).rows)
}

describe('a migration transaction', () => {
  it('holds the first statement: a later failure rolls it back, with no ledger row', async () => {
    await expectRolledBack(["await context.query('CREATE TABLE tx_first (id int)')"], 'tx_first')
  })

  it('runs the first statement under the lock timeout, inside a transaction block', async () => {
    const rows = await applyAndRead(
      [
        "const timeout = await context.query('SHOW lock_timeout')",
        'const block = await context.query("SELECT now() = statement_timestamp() AS fresh, current_setting(\'lock_timeout\') AS t")',
        "await context.query('CREATE TABLE tx_seen (lock_timeout text, fresh boolean)')",
        "await context.query('INSERT INTO tx_seen VALUES ($1, $2)', [timeout.rows[0].lock_timeout, block.rows[0].fresh])",
      ],
      'SELECT * FROM tx_seen',
      4321,
    )
    // 4321ms as PostgreSQL shows it; `fresh` false: the second statement ran later in the
    // same transaction as the first (now() is the transaction's start).
    expect(rows).toEqual([{ lock_timeout: '4321ms', fresh: false }])
  })

  it('returns the migration its own results: one statement, several, and parameterised', async () => {
    const [row] = await applyAndRead(
      [
        "const one = await context.query('SELECT 41 + 1 AS answer')",
        "const several = await context.query('SELECT 1 AS a; SELECT 2 AS b')",
        "const param = await context.query('SELECT $1::int AS p', [7])",
        "await context.query('CREATE TABLE tx_results (doc jsonb)')",
        'await context.query("INSERT INTO tx_results VALUES ($1)", [JSON.stringify({',
        '  one: one.rows, several: several.map((r) => r.rows), param: param.rows,',
        '})])',
      ],
      'SELECT doc FROM tx_results',
    )
    expect(row?.doc).toEqual({
      one: [{ answer: 42 }],
      several: [[{ a: 1 }], [{ b: 2 }]],
      param: [{ p: 7 }],
    })
  })

  it('opens with a parameterised first statement, and with none at all', async () => {
    const db = await expectRolledBack(
      [
        "await context.query('SELECT set_config($1, $2, true)', ['application_name', 'tx-test'])",
        "await context.query('CREATE TABLE tx_param (id int)')",
      ],
      'tx_param',
    )

    const quiet = await writeChain({ '001_nothing_to_do': '// no statement' })
    const ledger = await new Migrator({ connectionString: db.url, migrationsDir: quiet }).up()
    expect(ledger).toEqual(['001_nothing_to_do'])
    const rows = await new Migrator({ connectionString: db.url, migrationsDir: quiet }).ledger()
    expect(rows.map((r) => r.name)).toEqual(['001_nothing_to_do'])
  })

  it('a migration that ran no statement changed nothing (already-present); plain SQL that recorded nothing ran', async () => {
    const db = await emptyDatabase()
    const dir = await writeChain({
      '001_nothing_to_do': '// no statement',
      '002_plain_sql': "await context.query('CREATE TABLE tx_plain (id int)')",
    })
    await writeFile(
      join(dir, '003_no_tx.mjs'),
      "export const transaction = false\nexport async function up({ context }) { await context.query('SELECT 1') }\n",
    )
    await new Migrator({ connectionString: db.url, migrationsDir: dir }).up()
    const rows = await new Migrator({ connectionString: db.url, migrationsDir: dir }).ledger()
    expect(rows.map((r) => [r.name, r.outcome, r.changes])).toEqual([
      ['001_nothing_to_do', 'already-present', []],
      ['002_plain_sql', 'ran', []],
      ['003_no_tx', 'ran', []],
    ])
  })

  it('takes a query config object first, as pg does, and still rolls it back', async () => {
    await expectRolledBack(
      ["await context.query({ text: 'CREATE TABLE tx_config (id int)' })"],
      'tx_config',
    )
  })

  it('a syntax error in the first statement fails the run and leaves no transaction open', async () => {
    const dir = await writeChain({
      '001_typo': "await context.query('CREAT TABLE tx_typo (id int)')",
      '002_after': "await context.query('CREATE TABLE tx_after (id int)')",
    })
    const db = await emptyDatabase()
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    await expect(migrator.up()).rejects.toMatchObject({ code: '42601' })
    expect(await migrator.ledger()).toEqual([])
    expect(await tableExists(db.url, 'tx_after')).toBe(false)
  })
})

describe('the ledger row', () => {
  it('commits with the migration: a row that cannot be written takes the migration back with it', async () => {
    // The migration writes its own name into the ledger, so the engine's insert of the
    // row fails on the name's key: had the work committed before the row was written,
    // the table would stay with no row saying so.
    const dir = await writeChain({
      '001_ledger_clash': [
        "await context.query('CREATE TABLE lc_done (id int)')",
        "await context.query(`INSERT INTO schema_migrations (name, checksum, outcome, duration_ms, changes, applied_by) VALUES ('001_ledger_clash', 'x', 'ran', 0, '[]', 'test')`)",
      ].join('\n'),
    })
    const db = await emptyDatabase()
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    await expect(migrator.up()).rejects.toMatchObject({ code: '23505' })
    expect(await tableExists(db.url, 'lc_done')).toBe(false)
    expect(await migrator.ledger()).toEqual([])
  })

  it('says who applied it (host:pid) and how long it took', async () => {
    const dir = await writeChain({ '001_slowish': "await context.query('SELECT pg_sleep(0.25)')" })
    const db = await emptyDatabase()
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    expect(await migrator.up()).toEqual(['001_slowish'])
    const [row] = await migrator.ledger()
    expect(row).toMatchObject({ name: '001_slowish', appliedBy: `${hostname()}:${process.pid}` })
    expect(row?.durationMs).toBeGreaterThanOrEqual(250)
    expect(row?.durationMs).toBeLessThan(60_000)
  })
})

describe('statement_timeout', () => {
  it("a database's default for the application does not reach migrations; the engine's own limit does", async () => {
    const dir = await writeChain({
      '001_slow': [
        "await context.query('SELECT pg_sleep(0.4)')",
        "await context.query('CREATE TABLE st_done (id int)')",
      ].join('\n'),
    })
    const db = await emptyDatabase()
    await withClient(db.url, (c) =>
      c.query(`ALTER DATABASE ${db.name} SET statement_timeout = '150ms'`),
    )
    // In force for every other session: the statement the migration runs is cancelled there.
    await expect(withClient(db.url, (c) => c.query('SELECT pg_sleep(0.4)'))).rejects.toMatchObject({
      code: '57014',
    })

    const limited = new Migrator({
      connectionString: db.url,
      migrationsDir: dir,
      statementTimeoutMs: 100,
    })
    await expect(limited.up()).rejects.toMatchObject({ code: '57014' })
    expect(await tableExists(db.url, 'st_done')).toBe(false)
    expect(await limited.ledger()).toEqual([])

    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    expect(await migrator.up()).toEqual(['001_slow'])
    expect(await tableExists(db.url, 'st_done')).toBe(true)
  })
})
