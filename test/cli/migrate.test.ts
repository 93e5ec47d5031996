import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { freePort, withClient } from '../helpers/postgres.js'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs this test run's build of the CLI as a real process, with only the given environment. */
function cli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(inject('buildDir'), 'cli', 'migrate.js'), ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 90_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
        resolve({ code, stdout, stderr })
      },
    )
  })
}

const databases: TestDatabase[] = []
async function database(template: 'empty' | 'incident') {
  const db = await createTestDatabase(template)
  databases.push(db)
  return db
}
afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()))
})

const ledgerNames = (url: string) =>
  withClient(url, async (c) =>
    (await c.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).rows.map(
      (r) => r.name,
    ),
  )

describe('migrate CLI on a real database', () => {
  it('plan, up, status and verify take an empty database to the end of the chain', async () => {
    const db = await database('empty')
    const env = { DATABASE_URL: db.url }

    const planned = await cli(['plan', '--json'], env)
    expect(planned.code).toBe(0)
    const { pending } = JSON.parse(planned.stdout)
    expect(pending).toHaveLength(23)
    expect(pending[0]).toEqual({ name: '001_initial_schema', transaction: true })
    expect(pending[22].name).toBe('023_jersey_backfill')

    const human = await cli(['plan'], env)
    expect(human.code).toBe(0)
    expect(human.stdout).toContain('23 migrations would be applied')
    expect(human.stdout).toContain('020_custom_notes')
    expect(await ledgerNames(db.url).catch(() => 'no ledger')).toBe('no ledger')

    const upped = await cli(['up'], env)
    expect(upped.code, upped.stderr).toBe(0)
    expect(upped.stdout).toMatch(/^ {2}001_initial_schema +ran +\d+ ms$/m)
    // 023 finds no player to backfill on an empty database.
    expect(upped.stdout).toContain('applied 23 migrations: 21 ran, 2 already present')
    expect(await ledgerNames(db.url)).toHaveLength(23)

    const status = await cli(['status'], env)
    expect(status.code).toBe(0)
    const rows = status.stdout.split('\n').filter((l) => /^\d{3}_/.test(l))
    expect(rows).toHaveLength(23)
    for (const row of rows)
      expect(row).toMatch(/^\S+\s+applied\s+(ran|already-present)\s+\d{4}-\S+Z\s+\d+ ms\s+ok$/)
    expect(status.stdout).toContain(
      '23 migrations: 23 applied, 0 pending, 0 unknown; checksum mismatches: 0; drift: none',
    )
    expect(status.stdout).toContain('migration lock: free')

    const verified = await cli(['verify'], env)
    expect(verified.code, verified.stdout).toBe(0)
    expect(verified.stdout).toContain('verify: ok')

    const again = await cli(['up'], env)
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('nothing to apply')
    expect((await cli(['plan'], env)).stdout).toContain('nothing to apply')
  })

  it('--to stops plan and up after the named migration', async () => {
    const db = await database('empty')
    const env = { DATABASE_URL: db.url }
    const planned = await cli(['plan', '--to', '019_player_teams', '--json'], env)
    expect(planned.code).toBe(0)
    expect(
      JSON.parse(planned.stdout)
        .pending.map((p: { name: string }) => p.name)
        .at(-1),
    ).toBe('019_player_teams')
    const upped = await cli(['up', '--to', '019_player_teams', '--json'], env)
    expect(upped.code, upped.stderr).toBe(0)
    expect(JSON.parse(upped.stdout).applied).toHaveLength(19)
    const rest = JSON.parse((await cli(['plan', '--json'], env)).stdout).pending
    expect(rest.map((p: { name: string }) => p.name)).toEqual([
      '020_custom_notes',
      '021_oauth_tokens',
      '022_merge_heads',
      '023_jersey_backfill',
    ])
    // A target already applied is reached: nothing to do, exit 0, though later ones are pending.
    const again = await cli(['up', '--to', '005_guardians'], env)
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('nothing to apply: 005_guardians is applied (4 later')
    const plannedAgain = await cli(['plan', '--to', '005_guardians'], env)
    expect(plannedAgain.stdout).toContain('nothing to apply: 005_guardians is applied (4 later')
    const unknown = await cli(['up', '--to', '999_nope'], env)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('"999_nope" is not a migration of this build')
    const unknownJson = await cli(['up', '--to', '999_nope', '--json'], env)
    expect(unknownJson.code).toBe(2)
    expect(JSON.parse(unknownJson.stdout).error).toMatchObject({ code: 'USAGE' })
    expect((await cli(['status', '--to', '019_player_teams'], env)).code).toBe(2)
    expect(await ledgerNames(db.url)).toHaveLength(19)
  })

  it('up --to, after waiting for the lock while the rest was applied, counts what is pending after the run', async () => {
    const db = await database('empty')
    const env = { DATABASE_URL: db.url }
    expect((await cli(['up'], env)).code).toBe(0)
    // Another replica holds the lock, and its run (played here) has not yet recorded 004-023.
    const holder = new pg.Client(db.url)
    await holder.connect()
    try {
      await holder.query('SELECT pg_advisory_lock(1650553707, 1835624306)')
      await holder.query(
        `CREATE TEMP TABLE later AS SELECT * FROM schema_migrations WHERE name > '003_team_head_coach';
         DELETE FROM schema_migrations WHERE name > '003_team_head_coach'`,
      )
      const child = spawn(
        process.execPath,
        [join(inject('buildDir'), 'cli', 'migrate.js'), 'up', '--to', '003_team_head_coach'],
        { env: { PATH: process.env.PATH ?? '', ...env } },
      )
      let stdout = ''
      let stderr = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d
      })
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d
      })
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
      await expect
        .poll(() => stderr, { timeout: 20_000 })
        .toContain('waiting for the migration lock')
      // The holder's run commits the rest and lets go.
      await holder.query('INSERT INTO schema_migrations SELECT * FROM later')
      await holder.query('SELECT pg_advisory_unlock_all()')
      expect(await exited, stderr).toBe(0)
      expect(stdout).toContain('nothing to apply: every migration of this build is applied')
      expect(stdout).not.toContain('later migrations are pending')
    } finally {
      await holder.end()
    }
  })

  it('up on the incident database reports 020 as already present', async () => {
    const db = await database('incident')
    const run = await cli(['up', '--json'], { DATABASE_URL: db.url })
    expect(run.code, run.stderr).toBe(0)
    const { applied } = JSON.parse(run.stdout)
    expect(applied).toHaveLength(23)
    const m020 = applied.find((m: { name: string }) => m.name === '020_custom_notes')
    expect(m020).toMatchObject({
      outcome: 'already-present',
      changes: [{ object: 'players.custom_notes', action: 'exists' }],
    })
    expect((await cli(['verify'], { DATABASE_URL: db.url })).code).toBe(0)
  })

  it('up on the incident database says, in text, how many were taken as the legacy stamp says', async () => {
    const db = await database('incident')
    const run = await cli(['up'], { DATABASE_URL: db.url })
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain(
      'applied 23 migrations: 3 ran, 2 already present, 18 baseline (in place, as the legacy stamp says)',
    )
  })

  it('verify fails on an index dropped by hand and names it', async () => {
    const db = await database('empty')
    const env = { DATABASE_URL: db.url }
    expect((await cli(['up'], env)).code).toBe(0)
    await withClient(db.url, (c) => c.query('DROP INDEX ix_games_team_starts'))

    const run = await cli(['verify'], env)
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/^drift: missing .*CREATE INDEX ix_games_team_starts ON/m)
    expect(run.stderr).toMatch(/verify failed: 1 problem \(drift\)/)

    const json = await cli(['verify', '--json'], env)
    expect(json.code).toBe(1)
    const report = JSON.parse(json.stdout)
    expect(report.ok).toBe(false)
    expect(report.drift.status).toBe('drift')
    expect(report.problems).toEqual([expect.stringContaining('ix_games_team_starts')])
  })

  it('verify fails on pending migrations, unknown ledger rows and checksum mismatches', async () => {
    const db = await database('empty')
    const env = { DATABASE_URL: db.url }
    const fresh = await cli(['verify'], env)
    expect(fresh.code).toBe(1)
    expect(fresh.stdout).toContain('pending: 001_initial_schema')

    expect((await cli(['up'], env)).code).toBe(0)
    await withClient(db.url, async (c) => {
      await c.query(
        `INSERT INTO schema_migrations (name, checksum, outcome, duration_ms)
         VALUES ('024_from_a_newer_build', 'sha256:0', 'ran', 1)`,
      )
      await c.query(
        `UPDATE schema_migrations SET checksum = 'sha256:edited' WHERE name = '005_guardians'`,
      )
    })
    const run = await cli(['verify'], env)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain('unknown: 024_from_a_newer_build')
    expect(run.stdout).toContain('checksum: 005_guardians')

    const status = await cli(['status'], env)
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/^024_from_a_newer_build\s+unknown\s+ran/m)
    expect(status.stdout).toMatch(/^005_guardians\s+applied.*DIFFERS$/m)
  })

  it('down fails clearly on a migration without down() and changes nothing', async () => {
    const db = await database('empty')
    const env = { DATABASE_URL: db.url }
    expect((await cli(['up'], env)).code).toBe(0)
    const run = await cli(['down'], env)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('023_jersey_backfill has no down(); it cannot be reverted')
    expect(run.stderr.trim().split('\n')).toHaveLength(1)
    expect(await ledgerNames(db.url)).toHaveLength(23)
  })

  it("down refuses while the ledger lists a newer release's migration, and changes nothing", async () => {
    const db = await database('empty')
    const env = { DATABASE_URL: db.url }
    expect((await cli(['up'], env)).code).toBe(0)
    await withClient(db.url, (c) =>
      c.query(`INSERT INTO schema_migrations (name, checksum, outcome, duration_ms)
               VALUES ('099_from_a_newer_release', 'sha256:0', 'ran', 1)`),
    )
    const run = await cli(['down'], env)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain(
      'refusing to revert: the ledger lists migrations this build does not know (099_from_a_newer_release); revert them with the build that has them',
    )
    expect(run.stderr).not.toContain('down failed')
    expect(await ledgerNames(db.url)).toHaveLength(24)
  })

  it('down on a database the chain never ran on reverts nothing and creates nothing', async () => {
    const db = await database('empty')
    const run = await cli(['down'], { DATABASE_URL: db.url })
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toBe('nothing to revert: no migration is applied\n')
    const tables = await withClient(db.url, async (c) =>
      Number(
        (await c.query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0]
          .n,
      ),
    )
    expect(tables).toBe(0)
  })

  it('down reverts the last migration that has a down(), with its ledger row', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'migrate-cli-'))
    try {
      for (const name of ['001_first', '002_second']) {
        await writeFile(
          join(dir, `${name}.mjs`),
          `export async function up({ context }) { await context.query('CREATE TABLE IF NOT EXISTS t_${name} (id int)') }
export async function down({ context }) { await context.query('DROP TABLE t_${name}') }\n`,
        )
      }
      const db = await database('empty')
      const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: dir }
      expect((await cli(['up'], env)).code).toBe(0)
      const run = await cli(['down'], env)
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toContain('reverted 002_second')
      expect(await ledgerNames(db.url)).toEqual(['001_first'])
      // No snapshot beside a custom chain: verify checks the ledger only and says so.
      expect((await cli(['up'], env)).code).toBe(0)
      const verified = await cli(['verify'], env)
      expect(verified.code).toBe(0)
      expect(verified.stdout).toContain('schema not compared')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a short password is hidden where a URL holds it, without rewriting the output', async () => {
    // A password `1` replaced everywhere turned `"unknown": 1`-like output into invalid JSON.
    const db = await database('empty')
    const role = `cli_short_${Date.now()}`
    await withClient(inject('pgServerUrl'), async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '1'`)
      await c.query(`ALTER DATABASE ${db.name} OWNER TO ${role}`)
    })
    try {
      const url = new URL(db.url)
      url.username = role
      url.password = '1'
      const env = { DATABASE_URL: url.toString() }
      const up = await cli(['up', '--json'], env)
      expect(up.code, up.stderr).toBe(0)
      expect(JSON.parse(up.stdout).applied).toHaveLength(23)
      const status = await cli(['status', '--json'], env)
      expect(status.code, status.stderr).toBe(0)
      const doc = JSON.parse(status.stdout)
      expect(doc.migrations).toHaveLength(23)
      expect(status.stdout).not.toContain('[redacted]')
    } finally {
      await db.drop()
      await withClient(inject('pgServerUrl'), (c) => c.query(`DROP ROLE IF EXISTS ${role}`))
    }
  })

  it('an unreachable database exits 1 with one clear line and no password', async () => {
    const port = await freePort()
    const env = { DATABASE_URL: `postgres://app:s3cret-pw@127.0.0.1:${port}/basketball` }
    for (const command of ['status', 'up', 'verify']) {
      const run = await cli([command], env)
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(/^basketball-api migrate: cannot reach the database: .+\n$/)
      expect(run.stderr + run.stdout).not.toContain('s3cret-pw')
    }
  })

  it("a migration the data breaks: the error carries PostgreSQL's DETAIL, the row to fix", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'migrate-cli-'))
    try {
      await writeFile(
        join(dir, '001_numbers.mjs'),
        `export async function up({ context }) { await context.query('CREATE TABLE numbers (n int); INSERT INTO numbers VALUES (7), (7)') }\n`,
      )
      await writeFile(
        join(dir, '002_unique.mjs'),
        `export async function up({ context }) { await context.query('CREATE UNIQUE INDEX ux_numbers ON numbers (n)') }\n`,
      )
      const env = { DATABASE_URL: (await database('empty')).url, MIGRATIONS_DIR: dir }
      const human = await cli(['up'], env)
      expect(human.code).toBe(1)
      expect(human.stderr).toContain(
        'migration 002_unique failed: could not create unique index "ux_numbers" (SQLSTATE 23505): Key (n)=(7) is duplicated.',
      )
      const json = await cli(['up', '--json'], env)
      expect(JSON.parse(json.stdout).error).toMatchObject({
        migration: '002_unique',
        code: '23505',
        detail: 'Key (n)=(7) is duplicated.',
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a migration that fails exits 1 and names it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'migrate-cli-'))
    try {
      await writeFile(
        join(dir, '001_ok.mjs'),
        `export async function up({ context }) { await context.query('CREATE TABLE IF NOT EXISTS t_ok (id int)') }\n`,
      )
      await writeFile(
        join(dir, '002_broken.mjs'),
        `export async function up({ context }) { await context.query('ALTER TABLE t_missing ADD COLUMN x int') }\n`,
      )
      const db = await database('empty')
      const run = await cli(['up'], { DATABASE_URL: db.url, MIGRATIONS_DIR: dir })
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(/migration 002_broken failed: .*t_missing.*\(SQLSTATE 42P01\)/)
      expect(run.stdout).toMatch(/^ {2}001_ok +ran +\d+ ms$/m)
      expect(await ledgerNames(db.url)).toEqual(['001_ok'])
      const json = await cli(['up', '--json'], { DATABASE_URL: db.url, MIGRATIONS_DIR: dir })
      expect(json.code).toBe(1)
      expect(JSON.parse(json.stdout)).toMatchObject({
        command: 'up',
        applied: [],
        error: { migration: '002_broken', code: '42P01' },
      })
      // A module that does not parse: named, before anything of the run is applied.
      await writeFile(join(dir, '003_typo.mjs'), 'export async function up({ context }) {\n')
      const fresh = await database('empty')
      const typo = await cli(['up', '--json'], { DATABASE_URL: fresh.url, MIGRATIONS_DIR: dir })
      expect(typo.code).toBe(1)
      expect(JSON.parse(typo.stdout).error).toMatchObject({ migration: '003_typo', code: null })
      expect(typo.stderr).toContain('migration 003_typo could not be loaded: SyntaxError:')
      expect(await ledgerNames(fresh.url)).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
  it('two files of one migration name: up refuses and verify names it, exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'migrate-cli-'))
    try {
      const body = `export async function up({ context }) { await context.query('SELECT 1') }\n`
      await writeFile(join(dir, '001_one.mjs'), body)
      await writeFile(join(dir, '001_one.js'), body)
      const db = await database('empty')
      const env = { DATABASE_URL: db.url, MIGRATIONS_DIR: dir }
      const upped = await cli(['up', '--json'], env)
      expect(upped.code).toBe(1)
      expect(JSON.parse(upped.stdout).error).toMatchObject({ migration: '001_one' })
      expect(upped.stderr).toContain('migration 001_one exists twice in')
      const verified = await cli(['verify'], env)
      expect(verified.code).toBe(1)
      expect(verified.stdout).toMatch(
        /^broken: migration 001_one exists twice in .+ \(001_one\.js, 001_one\.mjs\): remove all but one$/m,
      )
      expect(verified.stdout).toContain('pending: 001_one')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  /**
   * `up` on a chain whose first migration sleeps `sleepS` seconds, SIGTERM once that
   * sleep runs in the database; returns how the CLI ended and the ledger.
   */
  async function termDuringSlow(sleepS: number, args: string[], env: Record<string, string>) {
    const dir = await mkdtemp(join(tmpdir(), 'migrate-cli-'))
    try {
      await writeFile(
        join(dir, '001_slow.mjs'),
        `export async function up({ context }) { await context.query('SELECT pg_sleep(${sleepS})'); await context.query('CREATE TABLE t_slow (id int)') }\n`,
      )
      await writeFile(
        join(dir, '002_next.mjs'),
        `export async function up({ context }) { await context.query('CREATE TABLE t_next (id int)') }\n`,
      )
      const db = await database('empty')
      const child = spawn(
        process.execPath,
        [join(inject('buildDir'), 'cli', 'migrate.js'), 'up', ...args],
        {
          env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, MIGRATIONS_DIR: dir, ...env },
        },
      )
      let stdout = ''
      let stderr = ''
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d
      })
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d
      })
      // Signal while 001 is inside its transaction, as seen from the database (its first
      // statement arrives as `BEGIN; SET LOCAL lock_timeout = …; SELECT pg_sleep(…)`).
      const running = () =>
        withClient(db.url, async (c) => {
          const { rowCount } = await c.query(
            `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%SELECT pg_sleep(${sleepS})%' AND state = 'active' AND pid <> pg_backend_pid()`,
          )
          return rowCount === 1
        })
      while (child.exitCode === null && !(await running()))
        await new Promise((r) => setTimeout(r, 50))
      const signalled = performance.now()
      child.kill('SIGTERM')
      const code = await exited
      const exitMs = performance.now() - signalled
      const tables = await withClient(db.url, async (c) =>
        (
          await c.query<{ t: string }>(
            "SELECT tablename AS t FROM pg_tables WHERE tablename LIKE 't\\_%' ORDER BY 1",
          )
        ).rows.map((r) => r.t),
      )
      return { code, exitMs, stdout, stderr, ledger: await ledgerNames(db.url), tables }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  it('SIGTERM lets the running migration commit, starts no other, exits 1', async () => {
    const run = await termDuringSlow(2.5, [], {})
    expect(run.code, run.stdout).toBe(1)
    expect(run.stderr).toContain('SIGTERM: stopping after the current migration')
    expect(run.stderr).toContain('up stopped by a signal; migrations that committed stay applied\n')
    expect(run.ledger).toEqual(['001_slow'])
    expect(run.tables).toEqual(['t_slow'])
  })

  it('SIGTERM with no time to finish: the migration is cancelled, rolled back, reported as a stop', async () => {
    // SHUTDOWN_TIMEOUT_MS 2000: the running migration gets 1000 ms, then it is cancelled.
    const run = await termDuringSlow(30, ['--json'], { SHUTDOWN_TIMEOUT_MS: '2000' })
    expect(run.code, run.stderr).toBe(1)
    expect(run.exitMs).toBeLessThan(10_000)
    expect(run.stderr).toContain('cancelling the running migration to shut down')
    expect(run.stderr).toContain(
      'up stopped by a signal; migrations that committed stay applied (001_slow was cancelled to stop: it is not recorded and runs again next time)',
    )
    // A stop, not a failed migration: no SQLSTATE, no "migration 001_slow failed".
    expect(run.stderr).not.toContain('57014')
    expect(run.stderr).not.toContain('failed')
    expect(JSON.parse(run.stdout)).toMatchObject({
      command: 'up',
      applied: [],
      error: { code: 'STOP_REQUESTED' },
    })
    expect(run.ledger).toEqual([])
    expect(run.tables).toEqual([])
  })
})

describe('migrate CLI usage', () => {
  const env = { DATABASE_URL: 'postgres://app:pw@127.0.0.1:1/basketball' }

  it.each([
    ['no command', []],
    ['an unknown command', ['frobnicate']],
    ['an unknown option', ['status', '--force']],
    ['an extra argument', ['status', 'now']],
  ])('%s exits 2 with the usage text', async (_what, args) => {
    const run = await cli(args, env)
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('usage: npm run migrate -- <command>')
    expect(run.stdout).toBe('')
  })

  it('a bad or missing configuration exits 2 without connecting', async () => {
    const missing = await cli(['status'], {})
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('DATABASE_URL (or MIGRATION_DATABASE_URL) is required')
    const bad = await cli(['status'], { ...env, MIGRATION_LOCK_TIMEOUT_MS: 'soon' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('MIGRATION_LOCK_TIMEOUT_MS')
  })

  it('with --json, a usage or configuration error is a JSON document on stdout too', async () => {
    const unknown = await cli(['status', '--json', '--force'], env)
    expect(unknown.code).toBe(2)
    expect(JSON.parse(unknown.stdout)).toEqual({
      command: 'status',
      error: { message: expect.stringContaining("'--force'"), code: 'USAGE' },
    })
    const bad = await cli(['verify', '--json'], {
      DATABASE_URL: 'postgres://app:hunter2hunter2@127.0.0.1:1/basketball',
      MIGRATION_LOCK_TIMEOUT_MS: 'soon',
    })
    expect(bad.code).toBe(2)
    expect(JSON.parse(bad.stdout)).toEqual({
      command: 'verify',
      error: { message: expect.stringContaining('MIGRATION_LOCK_TIMEOUT_MS'), code: 'USAGE' },
    })
    expect(bad.stdout + bad.stderr).not.toContain('hunter2hunter2')
    const none = await cli(['--json'], env)
    expect(JSON.parse(none.stdout)).toEqual({
      command: null,
      error: { message: 'missing command', code: 'USAGE' },
    })
  })

  it('reads only its own variables: a server-only value it does not read cannot stop it', async () => {
    const db = await database('empty')
    const run = await cli(['plan', '--json'], {
      DATABASE_URL: db.url,
      ADMIN_TOKEN: '',
      PORT: 'abc',
      LOG_LEVEL: 'verbose',
      HOST: ' ',
    })
    expect(run.code, run.stdout).toBe(0)
    expect(JSON.parse(run.stdout).pending).toHaveLength(23)
    const bad = await cli(['plan'], { DATABASE_URL: db.url, SHUTDOWN_TIMEOUT_MS: 'soon' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('SHUTDOWN_TIMEOUT_MS')
  })

  it('--help prints the usage and exits 0; no ADMIN_TOKEN is needed', async () => {
    const run = await cli(['--help'], env)
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('verify')
  })
})
