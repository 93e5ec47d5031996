import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadMigrations } from '../../src/migrate/loader.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { writeChain } from '../helpers/chains.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

const databases: TestDatabase[] = []
afterEach(async () => {
  await Promise.all(databases.splice(0).map((d) => d.drop()))
})

describe('a MIGRATIONS_DIR chain', () => {
  it('takes named exports, a default-exported object, CommonJS and top-level await, in name order, and skips other files', async () => {
    const dir = await writeChain({
      '001_named': "await context.ensureTable('a_named', { columns: { id: 'integer' } })",
    })
    await writeFile(
      join(dir, '002_default.mjs'),
      "export default { async up({ context }) { await context.ensureTable('b_default', { columns: { id: 'integer' } }) } }\n",
    )
    await writeFile(
      join(dir, '003_commonjs.js'),
      "module.exports = { async up({ context }) { await context.ensureTable('c_cjs', { columns: { id: 'integer' } }) } }\n",
    )
    // require() refuses a module with top-level await (the loader's fast path): import() takes it.
    await writeFile(
      join(dir, '004_top_level_await.mjs'),
      "const table = await Promise.resolve('d_tla')\nexport async function up({ context }) { await context.ensureTable(table, { columns: { id: 'integer' } }) }\n",
    )
    await writeFile(join(dir, 'README.md'), '# not a migration\n')
    await writeFile(join(dir, '001_named.d.ts'), 'export {}\n')
    const names = (await loadMigrations(dir)).map((m) => m.name)
    expect(names).toEqual(['001_named', '002_default', '003_commonjs', '004_top_level_await'])

    const db = await createTestDatabase('empty')
    databases.push(db)
    expect(await new Migrator({ connectionString: db.url, migrationsDir: dir }).up()).toEqual(names)
    const tables = await withClient(db.url, (c) =>
      c.query<{ t: string }>(
        "SELECT c.relname AS t FROM pg_class c WHERE c.relname IN ('a_named', 'b_default', 'c_cjs', 'd_tla') ORDER BY 1",
      ),
    )
    expect(tables.rows.map((r) => r.t)).toEqual(['a_named', 'b_default', 'c_cjs', 'd_tla'])
  })

  it('runs and lists migrations in code-unit order of their names, whatever the locale says', async () => {
    // `localeCompare` would put 010_alpha first; the run and /migrations agree on 010_Zeta.
    const dir = await writeChain({
      '010_alpha': "await context.ensureTable('t_alpha', { columns: { id: 'integer' } })",
      '010_Zeta': "await context.ensureTable('t_zeta', { columns: { id: 'integer' } })",
      '009_b-c': "await context.query('SELECT 1')",
      '009_b': "await context.query('SELECT 1')",
    })
    const order = ['009_b', '009_b-c', '010_Zeta', '010_alpha']
    expect((await loadMigrations(dir)).map((m) => m.name)).toEqual(order)

    const db = await createTestDatabase('empty')
    databases.push(db)
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    expect(await migrator.up()).toEqual(order)
    // A ledger row the chain does not know (a newer release's) takes its place by the same rule.
    await withClient(db.url, (c) =>
      c.query(
        "INSERT INTO schema_migrations (name, checksum, outcome, duration_ms) VALUES ('010_Zebra', 'sha256:x', 'ran', 1)",
      ),
    )
    const listed = (await migrator.inspect()).migrations.map((m) => [m.name, m.status])
    expect(listed).toEqual([
      ['009_b', 'applied'],
      ['009_b-c', 'applied'],
      ['010_Zebra', 'unknown'],
      ['010_Zeta', 'applied'],
      ['010_alpha', 'applied'],
    ])
  })

  it('a module without up() fails the run with its name, before anything is applied', async () => {
    const dir = await writeChain({ '001_ok': "await context.query('SELECT 1')" })
    await writeFile(join(dir, '002_broken.mjs'), 'export const nothing = 1\n')
    const db = await createTestDatabase('empty')
    databases.push(db)
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    await expect(migrator.up()).rejects.toThrow(
      'migration 002_broken does not export an up() function',
    )
    expect(await migrator.ledger()).toEqual([])
  })

  it('a CommonJS module that throws while loading runs once, and fails the run with its name', async () => {
    // require() drops a CommonJS module that threw from its cache: loading it again with
    // import() would repeat its side effects.
    const counter = `evaluations_${Date.now()}`
    const dir = await writeChain({ '001_ok': "await context.query('SELECT 1')" })
    await writeFile(
      join(dir, '002_bad_json.js'),
      `globalThis.${counter} = (globalThis.${counter} ?? 0) + 1\nJSON.parse('{bad')\nmodule.exports = { async up() {} }\n`,
    )
    const db = await createTestDatabase('empty')
    databases.push(db)
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    await expect(migrator.up()).rejects.toThrow(
      /^migration 002_bad_json could not be loaded: SyntaxError: /,
    )
    expect((globalThis as Record<string, unknown>)[counter]).toBe(1)
    expect(await migrator.ledger()).toEqual([])
  })

  it('a module that does not parse fails the run with its name, shown as the failed migration', async () => {
    const dir = await writeChain({ '001_ok': "await context.query('SELECT 1')" })
    await writeFile(
      join(dir, '002_typo.mjs'),
      "export async function up({ context }) {\n  context.query('x'\n}\n",
    )
    const db = await createTestDatabase('empty')
    databases.push(db)
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    await expect(migrator.up()).rejects.toThrow(/^migration 002_typo could not be loaded: /)
    expect(migrator.view().lastError).toMatchObject({ migration: '002_typo', code: null })
    const listed = await migrator.describe([], migrator.view())
    expect(listed.map((m) => m.status)).toEqual(['pending', 'failed'])
    expect(await migrator.ledger()).toEqual([])
  })

  it('two files of one name: listed once, and no run starts, applied or not, until one is removed', async () => {
    const dir = await writeChain({
      '001_ok': "await context.query('CREATE TABLE t_ok (id int)')",
      '002_twice': "await context.query('CREATE TABLE t_twice (id int)')",
    })
    const db = await createTestDatabase('empty')
    databases.push(db)
    await new Migrator({ connectionString: db.url, migrationsDir: dir }).up()
    // The same name compiled beside its source, and a new migration after it.
    await writeFile(
      join(dir, '002_twice.js'),
      "module.exports = { async up({ context }) { await context.query('DROP TABLE t_ok') } }\n",
    )
    await writeFile(
      join(dir, '003_next.mjs'),
      "export async function up({ context }) { await context.query('CREATE TABLE t_next (id int)') }\n",
    )
    const listed = await loadMigrations(dir)
    expect(listed.map((m) => [m.name, m.problem ?? null])).toEqual([
      ['001_ok', null],
      ['002_twice', expect.stringContaining('(002_twice.js, 002_twice.mjs): remove all but one')],
      ['003_next', null],
    ])
    const migrator = new Migrator({ connectionString: db.url, migrationsDir: dir })
    await expect(migrator.up()).rejects.toThrow(/^migration 002_twice exists twice in /)
    expect(migrator.view()).toMatchObject({
      state: 'failed',
      lastError: { migration: '002_twice', code: null },
    })
    // /migrations still shows the chain: what is applied, and what waits.
    const shown = await migrator.describe(await migrator.ledger(), migrator.view())
    expect(shown.map((m) => [m.name, m.status])).toEqual([
      ['001_ok', 'applied'],
      ['002_twice', 'applied'],
      ['003_next', 'pending'],
    ])
    expect((await migrator.ledger()).map((r) => r.name)).toEqual(['001_ok', '002_twice'])
    const tables = await withClient(db.url, async (c) =>
      (
        await c.query("SELECT tablename FROM pg_tables WHERE tablename LIKE 't\\_%' ORDER BY 1")
      ).rows.map((r) => r.tablename),
    )
    expect(tables).toEqual(['t_ok', 't_twice'])
  })
})
