import { parseArgs } from 'node:util'
import pg from 'pg'
import { type Config, ConfigError, loadConfig } from '../config.js'
import { endClient } from '../lib/end-client.js'
import {
  errorCode,
  errorDetail,
  isConnectionError,
  isSqlState,
  MigrationLoadError,
  RevertRefusedError,
  StopRequestedError,
} from '../migrate/errors.js'
import { lockHolder } from '../migrate/lock.js'
import {
  type Inspection,
  type MigrationView,
  Migrator,
  type MigratorLogger,
} from '../migrate/migrator.js'
import type { LockHolder } from '../migrate/types.js'

/**
 * `npm run migrate -- <command>`: the migration engine without HTTP, for
 * pipelines and Kubernetes Jobs. Same chain, same ledger, same advisory lock
 * as migrate-on-boot, so it can run while replicas are up.
 */

const PROGRAM = 'basketball-api migrate'

const USAGE = `usage: npm run migrate -- <command> [--json] [--to <name>]
       node dist/cli/migrate.js <command> [--json] [--to <name>]

commands:
  status   every migration of this build and of the ledger: status, outcome, applied at
  plan     what "up" would apply, in order; changes nothing
  up       applies every pending migration under the migration lock
  down     reverts the last applied migration, when it has a down()
  verify   fails when a migration is pending, the ledger has a row this build does
           not know, a checksum differs, or the schema drifted from the chain's snapshot

options:
  --json       one JSON document on stdout
  --to <name>  plan and up: stop after this migration of the chain
  -h, --help   this text

environment: DATABASE_URL or MIGRATION_DATABASE_URL (the latter wins: a direct
connection, not through PgBouncer), MIGRATIONS_DIR, MIGRATION_LOCK_TIMEOUT_MS,
MIGRATION_STATEMENT_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS (a stop gives a running
migration half of it before cancelling it).
exit codes: 0 success, 1 failure (migration failed, database unreachable,
verify found a problem), 2 usage or configuration error.`

const COMMANDS = ['status', 'plan', 'up', 'down', 'verify'] as const

/** What the CLI reads of the environment (USAGE); a server-only variable cannot stop it. */
const CLI_VARIABLES = [
  'DATABASE_URL',
  'MIGRATION_DATABASE_URL',
  'MIGRATIONS_DIR',
  'MIGRATION_LOCK_TIMEOUT_MS',
  'MIGRATION_STATEMENT_TIMEOUT_MS',
  'SHUTDOWN_TIMEOUT_MS',
] as const satisfies ReadonlyArray<keyof Config>
type Command = (typeof COMMANDS)[number]

/** Exit codes: the contract pipelines rely on. */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const

/** A failure that has already been explained on stderr's one line. */
class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

interface Output {
  json: boolean
  /** A line for humans on stdout (suppressed with --json). */
  line(text?: string): void
  /** The one JSON document of a --json run. */
  document(value: unknown): void
}

/** Passwords and whole connection strings never reach stdout or stderr. */
function makeRedactor(urls: Array<string | undefined>): (text: string) => string {
  // [text, replacement], longest first: whole URLs, a password where a URL holds it
  // (`:pw@`), and a bare password only when it is long enough not to be a common string
  // (a password `1` would otherwise rewrite every 1 of the output).
  const rules = new Map<string, string>()
  for (const url of urls) {
    if (!url) continue
    rules.set(url, '[redacted]')
    try {
      const password = new URL(url).password
      for (const form of new Set([password, decodeURIComponent(password)])) {
        if (!form) continue
        rules.set(`:${form}@`, ':[redacted]@')
        if (form.length >= 8) rules.set(form, '[redacted]')
      }
    } catch {
      // Not a URL after all: the whole string is already a rule.
    }
  }
  const list = [...rules].sort(([a], [b]) => b.length - a.length)
  return (text) => list.reduce((out, [secret, by]) => out.split(secret).join(by), text)
}

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorText(err.errors[0])
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return err.message || (typeof code === 'string' ? code : err.name)
  }
  return String(err)
}

/** Progress and warnings of the engine, one line each on stderr (stdout stays the result). */
function makeLogger(redact: (text: string) => string, onApplied: (obj: object) => void) {
  const write = (level: string, obj: object, msg?: string) => {
    const fields = Object.fromEntries(
      Object.entries(obj).map(([k, v]) => [k, v instanceof Error ? errorText(v) : v]),
    )
    const detail = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : ''
    process.stderr.write(redact(`${PROGRAM}: ${level}: ${msg ?? ''}${detail}\n`))
  }
  const logger: MigratorLogger = {
    info(obj, msg) {
      if ('migration' in obj && 'outcome' in obj) onApplied(obj)
      else write('info', obj, msg)
    },
    warn: (obj, msg) => write('warn', obj, msg),
    error: (obj, msg) => write('error', obj, msg),
    debug() {},
  }
  return logger
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  )
}

const checksumText = (m: MigrationView) =>
  m.checksumMatches === null ? '-' : m.checksumMatches ? 'ok' : 'DIFFERS'

function summary(i: Inspection): string {
  return (
    `${i.migrations.length} migrations: ${i.applied} applied, ${i.pending} pending, ` +
    `${i.unknown} unknown; checksum mismatches: ${i.checksumMismatches}; drift: ${i.drift.status}`
  )
}

function holderText(holder: LockHolder | null): string {
  if (!holder) return 'migration lock: free'
  const where = holder.clientAddr ? `, ${holder.clientAddr}` : ''
  const age = holder.sessionSeconds === null ? '' : `, session ${holder.sessionSeconds} s old`
  return `migration lock: held by pid ${holder.pid} (${holder.application}${where}${age})`
}

/** Who holds the migration lock: the one thing about a run in another process the ledger cannot say. */
async function readLockHolder(connectionString: string): Promise<LockHolder | null> {
  const client = new pg.Client({
    connectionString,
    application_name: 'basketball-api:migrate-cli',
    connectionTimeoutMillis: 5000,
  })
  client.on('error', () => {})
  await client.connect()
  try {
    return await lockHolder(client)
  } finally {
    await endClient(client)
  }
}

/** Everything `verify` objects to, one line each. */
function verifyProblems(i: Inspection): string[] {
  const problems: string[] = []
  for (const m of i.migrations) {
    if (m.status === 'pending' || m.status === 'failed') problems.push(`pending: ${m.name}`)
    if (m.status === 'unknown')
      problems.push(`unknown: ${m.name} is in the ledger, not in this build`)
    if (m.checksumMatches === false)
      problems.push(`checksum: ${m.name} in this build is not the source that was applied`)
  }
  for (const d of i.drift.differences) problems.push(`drift: ${d}`)
  return problems
}

async function status(migrator: Migrator, connectionString: string, out: Output) {
  const [inspection, holder] = await Promise.all([
    migrator.inspect(),
    readLockHolder(connectionString),
  ])
  if (out.json) {
    // This process runs no migration: its own run state means nothing to the reader.
    const { run: _own, ...shown } = inspection
    return out.document({ command: 'status', ...shown, lockHolder: holder })
  }
  out.line(
    table([
      ['NAME', 'STATUS', 'OUTCOME', 'APPLIED AT', 'DURATION', 'CHECKSUM'],
      ...inspection.migrations.map((m) => [
        m.name,
        m.status,
        m.outcome ?? '-',
        m.appliedAt ?? '-',
        m.durationMs === null ? '-' : `${m.durationMs} ms`,
        checksumText(m),
      ]),
    ]).join('\n'),
  )
  out.line()
  out.line(summary(inspection))
  out.line(holderText(holder))
}

async function plan(migrator: Migrator, out: Output, to: string | undefined) {
  const [migrations, rows] = await Promise.all([migrator.migrations(), migrator.ledger()])
  const pending = new Set(await migrator.pending(rows))
  const last = to === undefined ? migrations.length : migrations.findIndex((m) => m.name === to) + 1
  const steps = await Promise.all(
    migrations
      .slice(0, last)
      .filter((m) => pending.has(m.name))
      .map(async (m) => ({ name: m.name, transaction: (await m.load()).transaction !== false })),
  )
  const known = new Set(migrations.map((m) => m.name))
  const unknown = rows.filter((r) => !known.has(r.name)).map((r) => r.name)
  if (out.json) return out.document({ command: 'plan', pending: steps, unknown })
  if (steps.length === 0) {
    out.line(
      to === undefined || pending.size === 0
        ? 'nothing to apply: every migration of this build is applied'
        : `nothing to apply: ${to} is applied (${pending.size} later migrations are pending)`,
    )
  } else {
    out.line(`${steps.length} migrations would be applied, in this order:`)
    for (const s of steps) out.line(`  ${s.name}${s.transaction ? '' : '  (no transaction)'}`)
  }
  if (unknown.length > 0)
    out.line(`the ledger also lists migrations this build does not know: ${unknown.join(', ')}`)
}

async function up(
  migrator: Migrator,
  out: Output,
  applied: Array<Record<string, unknown>>,
  to: string | undefined,
) {
  const before = await migrator.pending()
  const target = to === undefined ? '' : ` up to ${to}`
  if (before.length > 0) out.line(`applying pending migrations${target} (${before.length} pending)`)
  let names: string[]
  try {
    names = await migrator.up(to === undefined ? {} : { to })
  } catch (err) {
    if (applied.length > 0 && !out.json)
      out.line(`${applied.length} migrations were applied before the failure and stay applied`)
    throw err
  }
  const [ledger, migrations] = await Promise.all([migrator.ledger(), migrator.migrations()])
  const rows = new Map(ledger.map((r) => [r.name, r]))
  // Pending now, not before the run: while it waited for the lock, another run may have
  // applied what `before` listed.
  const stillPending = migrations.filter((m) => !rows.has(m.name)).length
  const result = names.map((name) => {
    const row = rows.get(name)
    return {
      name,
      outcome: row?.outcome ?? null,
      durationMs: row?.durationMs ?? null,
      changes: row?.changes ?? [],
    }
  })
  if (out.json) return out.document({ command: 'up', applied: result })
  const ran = result.filter((r) => r.outcome === 'ran').length
  const baseline = result.filter((r) => r.outcome === 'baseline').length
  const present = result.filter((r) => r.outcome === 'already-present').length
  out.line(
    names.length > 0
      ? `applied ${names.length} migrations: ${ran} ran, ${present} already present` +
          (baseline > 0 ? `, ${baseline} baseline (in place, as the legacy stamp says)` : '')
      : stillPending === 0 || to === undefined
        ? 'nothing to apply: every migration of this build is applied'
        : `nothing to apply: ${to} is applied (${stillPending} later migrations are pending)`,
  )
}

async function down(migrator: Migrator, out: Output) {
  // Refused under the lock when the ledger lists a newer release's migrations
  // (RevertRefusedError): reverting an older one under it would pull its floor away.
  const reverted = await migrator.down()
  if (out.json) return out.document({ command: 'down', reverted })
  out.line(
    reverted === null ? 'nothing to revert: no migration is applied' : `reverted ${reverted}`,
  )
}

async function verify(migrator: Migrator, out: Output) {
  const [inspection, chain] = await Promise.all([migrator.inspect(), migrator.migrations()])
  const problems = [
    ...chain.flatMap((m) => (m.problem ? [`broken: migration ${m.name} ${m.problem}`] : [])),
    ...verifyProblems(inspection),
  ]
  const compared = inspection.drift.status !== 'unknown'
  if (out.json) {
    const { migrations: _omitted, run: _own, ...rest } = inspection
    out.document({ command: 'verify', ok: problems.length === 0, problems, ...rest })
  } else {
    for (const p of problems) out.line(p)
    if (!compared && inspection.pending === 0)
      out.line('schema not compared: the migrations folder has no schema.snapshot.json')
    out.line(summary(inspection))
  }
  if (problems.length > 0) {
    const kinds = [...new Set(problems.map((p) => p.slice(0, p.indexOf(':'))))].join(', ')
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
    throw new CliFailure(`verify failed: ${count} (${kinds})`, EXIT.failure, {
      problems,
    })
  }
  if (!out.json) out.line('verify: ok')
}

function describeFailure(err: unknown, migrator: Migrator | undefined, command: string) {
  if (err instanceof CliFailure) return err
  if (err instanceof RevertRefusedError) return new CliFailure(err.message, EXIT.failure)
  if (err instanceof StopRequestedError) {
    // The running migration either committed within the grace period or was cancelled.
    const cancelled = err.cause === undefined ? '' : ` (${err.message})`
    return new CliFailure(
      `${command} stopped by a signal; migrations that committed stay applied${cancelled}`,
      EXIT.failure,
      { code: err.code },
    )
  }
  const code = errorCode(err)
  const text = errorText(err)
  if (code === '28P01' || code === '28000')
    return new CliFailure(`the database refused the credentials: ${text}`, EXIT.failure, { code })
  // A migration's own statement failing with a connection-class code (3D000 from an
  // `ALTER DATABASE` typo) is that migration's failure, told below; its session gone is not.
  const view = migrator?.view()
  const ownStatement = view?.lastError?.migration != null && view.sessionLost === false
  if (isConnectionError(err) && !ownStatement) {
    const during = view?.lastError?.migration ? ` (while applying ${view.lastError.migration})` : ''
    return new CliFailure(`cannot reach the database${during}: ${text}`, EXIT.failure, { code })
  }
  const migration =
    migrator?.view().lastError?.migration ??
    (err instanceof MigrationLoadError ? err.migration : null)
  const where =
    migration && !text.startsWith(`migration ${migration} `)
      ? `migration ${migration} failed: `
      : `${command} failed: `
  const label = code === null ? '' : isSqlState(code) ? ` (SQLSTATE ${code})` : ` (${code})`
  // PostgreSQL's DETAIL says which row to fix (`Key (…)=(…) is duplicated.`).
  const detail = errorDetail(err)
  return new CliFailure(`${where}${text}${label}${detail ? `: ${detail}` : ''}`, EXIT.failure, {
    code,
    migration,
    detail,
  })
}

/** Runs the CLI; resolves with the exit code. */
async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let redact = (text: string) => text
  const stderr = (message: string) => process.stderr.write(redact(`${PROGRAM}: ${message}\n`))
  // Asked for before the arguments are known to parse: a pipeline reading stdout as JSON
  // gets a document for a usage or configuration error too.
  const wantsJson = argv.includes('--json')
  const usage = (message: string) => {
    stderr(message)
    process.stderr.write(`${USAGE}\n`)
    if (wantsJson) {
      const command = argv.find((a) => (COMMANDS as readonly string[]).includes(a)) ?? null
      process.stdout.write(
        `${JSON.stringify({ command, error: { message: redact(message), code: 'USAGE' } }, null, 2)}\n`,
      )
    }
    return EXIT.usage
  }

  let values: { json?: boolean; help?: boolean; to?: string }
  let positionals: string[]
  try {
    ;({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        to: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err) {
    return usage(errorText(err))
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const [name, ...extra] = positionals
  if (name === undefined) return usage('missing command')
  if (!(COMMANDS as readonly string[]).includes(name))
    return usage(`unknown command: ${JSON.stringify(name)}`)
  if (extra.length > 0) return usage(`unexpected arguments: ${extra.join(' ')}`)
  const command = name as Command
  if (values.to !== undefined && command !== 'plan' && command !== 'up')
    return usage(`--to applies to plan and up, not ${command}`)

  let config: Config
  try {
    config = loadConfig(env, { requireAdminToken: false, only: CLI_VARIABLES })
  } catch (err) {
    if (err instanceof ConfigError) return usage(err.message)
    throw err
  }
  const connectionString = config.MIGRATION_DATABASE_URL ?? config.DATABASE_URL
  redact = makeRedactor([config.DATABASE_URL, config.MIGRATION_DATABASE_URL])
  if (connectionString === undefined) {
    return usage(
      'DATABASE_URL (or MIGRATION_DATABASE_URL) is required: the migrate command does not start the embedded database',
    )
  }

  const json = values.json === true
  const out: Output = {
    json,
    line: (text = '') => {
      if (!json) process.stdout.write(`${redact(text)}\n`)
    },
    // String by string, so that what is redacted never breaks the JSON around it.
    document: (value) =>
      process.stdout.write(
        `${JSON.stringify(value, (_key, v) => (typeof v === 'string' ? redact(v) : v), 2)}\n`,
      ),
  }
  const applied: Array<Record<string, unknown>> = []
  const migrator = new Migrator({
    connectionString,
    migrationsDir: config.MIGRATIONS_DIR,
    lockTimeoutMs: config.MIGRATION_LOCK_TIMEOUT_MS,
    statementTimeoutMs: config.MIGRATION_STATEMENT_TIMEOUT_MS,
    // As in the server: on SIGTERM a running migration gets half the shutdown budget.
    stopGraceMs: Math.max(1000, Math.floor(config.SHUTDOWN_TIMEOUT_MS / 2)),
    applicationName: 'basketball-api-cli',
    logger: makeLogger(redact, (obj) => {
      const o = obj as { migration: string; outcome: string; durationMs?: number }
      applied.push(o)
      out.line(`  ${o.migration.padEnd(30)}  ${o.outcome.padEnd(15)}  ${o.durationMs ?? '?'} ms`)
    }),
  })

  // A Job deleted mid-run: no new migration starts, the running one commits or rolls back.
  const onSignal = (signal: NodeJS.Signals) => {
    stderr(`${signal}: stopping after the current migration`)
    void migrator.stop()
  }
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  try {
    if (values.to !== undefined) {
      const names = (await migrator.migrations()).map((m) => m.name)
      if (!names.includes(values.to)) {
        const message = `--to ${JSON.stringify(values.to)} is not a migration of this build`
        throw new CliFailure(message, EXIT.usage)
      }
    }
    switch (command) {
      case 'status':
        await status(migrator, connectionString, out)
        break
      case 'plan':
        await plan(migrator, out, values.to)
        break
      case 'up':
        await up(migrator, out, applied, values.to)
        break
      case 'down':
        await down(migrator, out)
        break
      case 'verify':
        await verify(migrator, out)
        break
    }
    return EXIT.ok
  } catch (err) {
    const failure = describeFailure(err, migrator, command)
    stderr(failure.message)
    if (json && !(err instanceof CliFailure && command === 'verify')) {
      const committed = command === 'up' ? { applied: applied.map((a) => a.migration) } : {}
      const usage = failure.exitCode === EXIT.usage ? { code: 'USAGE' } : {}
      out.document({
        command,
        ...committed,
        error: { message: failure.message, ...usage, ...failure.details },
      })
    }
    return failure.exitCode
  } finally {
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
  }
}

/** Exits once stdout and stderr are flushed, not when the last stray timer fires. */
function exit(code: number) {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)))
}

main(process.argv.slice(2), process.env).then(exit, (err) => {
  process.stderr.write(`${PROGRAM}: unexpected error: ${errorText(err)}\n`)
  exit(EXIT.failure)
})
