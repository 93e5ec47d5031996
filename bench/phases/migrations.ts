import { join } from 'node:path'
import { writePsqlScript, writeTrivialChain } from '../lib/chains.js'
import type { Context } from '../lib/context.js'
import { runCommand } from '../lib/procs.js'
import type { PhaseResult } from '../lib/report.js'
import { fmt, median, round } from '../lib/stats.js'

const COUNT = 200
const PSQL = '/usr/bin/psql'

interface EngineRun {
  /** `await new Migrator(...).up()` in-process: connections, lock, ledger, loading the 200 modules, 200 transactions, release. */
  upMs: number
  /** The same child process from spawn to exit (node start-up and the engine's import included). */
  processMs: number
}

/**
 * 200 trivial migrations on an empty database: the engine (in a fresh node process
 * per trial, timed around `up()`) against psql applying the same statements, each in
 * its own transaction with a ledger insert (`psql -q -f`, timed from spawn to exit).
 */
export async function migrationOverhead(ctx: Context): Promise<PhaseResult> {
  const dir = join(ctx.tmp, `chain-${COUNT}`)
  const script = join(ctx.tmp, `chain-${COUNT}.sql`)
  await writeTrivialChain(dir, COUNT)
  await writePsqlScript(script, COUNT)
  const engine: EngineRun[] = []
  const psql: number[] = []

  const runEngine = async () => {
    const url = await ctx.admin.createDatabase('bench_mig_engine')
    const { ms, stdout } = await runCommand(process.execPath, [
      join(ctx.root, 'bench', 'lib', 'time-migrator.mjs'),
      ctx.build.dir,
      url,
      dir,
    ])
    const out = JSON.parse(stdout) as { upMs: number; applied: number }
    if (out.applied !== COUNT) throw new Error(`engine applied ${out.applied} of ${COUNT}`)
    await checkLedger(ctx, 'bench_mig_engine')
    await ctx.admin.dropDatabase('bench_mig_engine')
    engine.push({ upMs: out.upMs, processMs: ms })
  }
  const runPsql = async () => {
    const url = await ctx.admin.createDatabase('bench_mig_psql')
    const { ms } = await runCommand(PSQL, [
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      url,
      '-f',
      script,
    ])
    await checkLedger(ctx, 'bench_mig_psql')
    await ctx.admin.dropDatabase('bench_mig_psql')
    psql.push(ms)
  }

  for (let t = 0; t < ctx.args.trials; t++) {
    if (t % 2 === 0) {
      await runEngine()
      await runPsql()
    } else {
      await runPsql()
      await runEngine()
    }
    const e = engine.at(-1)
    ctx.log(
      `  trial ${t + 1}/${ctx.args.trials}: engine up() ${fmt(e?.upMs ?? Number.NaN, 0)} ms ` +
        `(process ${fmt(e?.processMs ?? Number.NaN, 0)} ms), psql ${fmt(psql.at(-1) ?? Number.NaN, 0)} ms`,
    )
  }
  const up = median(engine.map((e) => e.upMs))
  const proc = median(engine.map((e) => e.processMs))
  const base = median(psql)
  return {
    rows: [
      {
        figure: `${COUNT} trivial migrations, empty DB (ms)`,
        service: fmt(up, 0),
        baseline: fmt(base, 0),
        ratio: up / base,
        target: '≤ 1.30×',
        met: up / base <= 1.3,
        note: `engine up() in-process vs psql -f wall time; whole node process: ${fmt(proc, 0)} ms (${fmt(proc / base, 2)}×)`,
      },
    ],
    notes: [],
    data: {
      count: COUNT,
      engine: engine.map((e) => ({ upMs: round(e.upMs), processMs: round(e.processMs) })),
      psqlMs: psql.map((p) => round(p)),
      medians: { engineUpMs: up, engineProcessMs: proc, psqlMs: base },
      perMigrationMs: { engine: up / COUNT, psql: base / COUNT },
    },
  }
}

async function checkLedger(ctx: Context, database: string) {
  const url = ctx.admin.url(database)
  const { stdout } = await runCommand(PSQL, [
    '-X',
    '-A',
    '-t',
    '-d',
    url,
    '-c',
    'SELECT count(*) FROM schema_migrations',
  ])
  if (Number(stdout.trim()) !== COUNT) {
    throw new Error(`${database}: ledger has ${stdout.trim()} rows, expected ${COUNT}`)
  }
}
