// `npm run bench [-- --quick]`: the service against a bare Fastify + pg process, side by
// side on one PostgreSQL, medians of alternating runs; prints the table and writes
// bench/results/bench-<time>.json. See bench/README.md for what each figure measures.
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { startTestPostgres, type TestPostgres } from '../test/helpers/postgres.js'
import { type Phase, parseArgs } from './lib/args.js'
import { type Build, buildService } from './lib/build.js'
import { type Context, fillCompileCaches } from './lib/context.js'
import { Admin } from './lib/db.js'
import { machine } from './lib/machine.js'
import { killAllChildren } from './lib/procs.js'
import { type PhaseResult, type Row, table } from './lib/report.js'
import { fmt } from './lib/stats.js'
import { bootScale } from './phases/boot-scale.js'
import { instructions } from './phases/instructions.js'
import { migrationOverhead } from './phases/migrations.js'
import { replicas } from './phases/replicas.js'
import { sideBySide } from './phases/side-by-side.js'

const root = join(import.meta.dirname, '..')
const started = performance.now()
const log = (message: string) => {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stdout.write(`[${s}s] ${message}\n`)
}

let tmp: string | undefined
let build: Build | undefined
let server: TestPostgres | undefined
let admin: Admin | undefined
let cleaning: Promise<void> | undefined

/** Ends every child, then the database server, then removes the temp folders. Runs once. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killAllChildren()
    await admin?.end()
    await server?.stop().catch((err) => log(`could not stop PostgreSQL: ${String(err)}`))
    if (tmp) await rm(tmp, { recursive: true, force: true })
    await build?.remove()
  })()
  return cleaning
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`)
    void cleanup().finally(() => process.exit(130))
  })
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  tmp = await mkdtemp(join(tmpdir(), 'basketball-bench-'))
  log(
    args.buildDir
      ? `using the build in ${args.buildDir}`
      : args.useDist
        ? 'using dist/ as it is'
        : 'building the service into a private folder',
  )
  build = await buildService(root, args.useDist, args.buildDir)
  if (build.kind === 'private') log(`built in ${fmt(build.ms / 1000, 1)} s`)
  log('starting PostgreSQL (TEST_DATABASE_URL, else testcontainers, else embedded)')
  const compileCache = args.compileCache ? await fillCompileCaches(root, build.dir, tmp) : null
  if (compileCache)
    log("compile caches filled (service: the image's step; bare: a start without env)")
  server = await startTestPostgres()
  admin = await Admin.connect(server.url)
  const host = machine(server)
  log(
    `machine: ${host.cpuCount}× ${host.cpuModel}, ${host.memoryGiB} GiB, ${host.os}, node ${host.node}, ` +
      `PostgreSQL ${host.postgres} (${host.postgresSource}), load average ${host.loadAverageAtStart.join(' ')}`,
  )
  const ctx: Context = {
    root,
    args,
    build,
    admin,
    tmp,
    adminToken: randomBytes(24).toString('hex'),
    compileCache,
    log,
  }
  const phases: Array<[Phase, (c: Context) => Promise<PhaseResult>]> = [
    ['side-by-side', sideBySide],
    ['migrations', migrationOverhead],
    ['boot-scale', bootScale],
    ['replicas', replicas],
    ['instructions', instructions],
  ]
  const results: Partial<Record<Phase, PhaseResult>> = {}
  const rows: Row[] = []
  const notes: string[] = []
  for (const [name, phase] of phases) {
    if (!args.only.has(name)) continue
    log(`phase ${name}`)
    const result = await phase(ctx)
    results[name] = result
    rows.push(...result.rows)
    notes.push(...result.notes)
  }

  const loadAtEnd = loadavg().map((l) => Math.round(l * 100) / 100)
  const summary = [
    '',
    `basketball-api bench — ${args.quick ? 'quick' : 'full'}: ${args.runs} side-by-side runs, ${args.trials} trials per phase, ${args.loadSeconds} s loads × ${args.connections} connections, service LOG_LEVEL=${args.logLevel}${args.compileCache ? ', both with a compile cache' : ''}`,
    `machine: ${host.cpuCount}× ${host.cpuModel}; ${host.memoryGiB} GiB RAM; ${host.os}; node ${host.node}; PostgreSQL ${host.postgres} (${host.postgresSource}); load average ${host.loadAverageAtStart.join('/')} at start, ${loadAtEnd.join('/')} at end`,
    '',
    table(rows),
    '',
    ...rows.filter((r) => r.note).map((r) => `- ${r.figure}: ${r.note}`),
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n')
  process.stdout.write(summary)

  const resultsDir = join(root, 'bench', 'results')
  await mkdir(resultsDir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const file = join(resultsDir, `bench-${stamp}.json`)
  const json = {
    at: new Date().toISOString(),
    args: { ...args, only: [...args.only] },
    machine: { ...host, loadAverageAtEnd: loadAtEnd },
    build: { kind: build.kind, dir: build.dir.slice(root.length + 1) },
    rows,
    notes,
    phases: results,
    durationS: Math.round((performance.now() - started) / 1000),
  }
  await writeFile(file, `${JSON.stringify(json, null, 2)}\n`)
  await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`)
  const missed = rows.filter((r) => r.met === false).length
  log(`wrote ${file.slice(root.length + 1)} (${json.durationS} s in all; ${missed} targets missed)`)
}

// A finished run exits 0 whatever the figures (they are in the table and the JSON); 2 on failure.
main()
  .then(async () => {
    await cleanup()
  })
  .catch(async (err) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    )
    await cleanup()
    process.exitCode = 2
  })
