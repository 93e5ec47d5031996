import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { type Context, startBare, startService } from '../lib/context.js'
import { type BenchProcess, cpuMs, timeToFirst200 } from '../lib/procs.js'
import type { PhaseResult } from '../lib/report.js'
import { fmt, median, round } from '../lib/stats.js'

const REPLICAS = 8

interface Together {
  /** From the first spawn to the last replica's first 200. */
  allReadyMs: number
  /** Each replica, from the first spawn. */
  readyMs: number[]
  /** CPU each replica had used when it answered its first 200. */
  cpuMs: number[]
  /** Per replica: migrations it applied and whether it logged a wait for the lock. */
  roles: Array<{ applied: number; waited: boolean }>
}

const countLines = (out: string, msg: string) =>
  out.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length

/**
 * The built-in chain on an empty database: one replica alone, against eight started
 * together on another empty database (alternating which goes first).
 */
export async function replicas(ctx: Context): Promise<PhaseResult> {
  const alone: number[] = []
  const aloneCpu: number[] = []
  const together: Together[] = []
  // The floor: the bare process (connect, one query, listen) alone and eight together.
  const bareAlone: number[] = []
  const bareEight: number[] = []
  const bareEightCpu: number[] = []

  const runAlone = async (t: number) => {
    const db = 'bench_rep_alone'
    const url = await ctx.admin.createDatabase(db)
    const proc = await startService(ctx, `alone-${t}`, { DATABASE_URL: url, LOG_LEVEL: 'info' })
    try {
      alone.push(await timeToFirst200(proc, '/health/ready'))
      aloneCpu.push(await cpuMs(proc.pid))
    } finally {
      await proc.stop()
      await ctx.admin.dropDatabase(db)
    }
  }
  const runTogether = async (t: number) => {
    const db = 'bench_rep_eight'
    const url = await ctx.admin.createDatabase(db)
    const procs: Array<BenchProcess & { stdout(): string }> = []
    try {
      for (let i = 0; i < REPLICAS; i++) {
        procs.push(
          await startService(
            ctx,
            `replica-${t}-${i}`,
            { DATABASE_URL: url, LOG_LEVEL: 'info' },
            { keepStdout: true },
          ),
        )
      }
      const first = procs[0]?.spawnedAt ?? performance.now()
      const ready = await Promise.all(
        procs.map(async (p) => {
          const ms = (await timeToFirst200(p, '/health/ready')) + p.spawnedAt - first
          return { ms, cpu: await cpuMs(p.pid) }
        }),
      )
      const readyMs = ready.map((r) => r.ms)
      together.push({
        allReadyMs: Math.max(...readyMs),
        readyMs: readyMs.map((r) => round(r)),
        cpuMs: ready.map((r) => r.cpu),
        roles: procs.map((p) => ({
          applied: countLines(p.stdout(), 'migration applied'),
          waited: countLines(p.stdout(), 'waiting for the migration lock') > 0,
        })),
      })
    } finally {
      await Promise.all(procs.map((p) => p.stop()))
      await ctx.admin.dropDatabase(db)
    }
  }

  const runBare = async (t: number) => {
    const db = 'bench_rep_bare'
    const url = await ctx.admin.createDatabase(db)
    const env = { DATABASE_URL: url, BENCH_ROSTER_SQL: 'SELECT 1' }
    try {
      const one = await startBare(ctx, `bare-alone-${t}`, env)
      try {
        bareAlone.push(await timeToFirst200(one, '/health/ready'))
      } finally {
        await one.stop()
      }
      const procs: BenchProcess[] = []
      try {
        for (let i = 0; i < REPLICAS; i++) procs.push(await startBare(ctx, `bare-${t}-${i}`, env))
        const first = procs[0]?.spawnedAt ?? performance.now()
        const ready = await Promise.all(
          procs.map(async (p) => ({
            ms: (await timeToFirst200(p, '/health/ready')) + p.spawnedAt - first,
            cpu: await cpuMs(p.pid),
          })),
        )
        bareEight.push(Math.max(...ready.map((r) => r.ms)))
        bareEightCpu.push(ready.reduce((n, r) => n + r.cpu, 0))
      } finally {
        await Promise.all(procs.map((p) => p.stop()))
      }
    } finally {
      await ctx.admin.dropDatabase(db)
    }
  }

  for (let t = 0; t < ctx.args.trials; t++) {
    if (t % 2 === 0) {
      await runAlone(t)
      await runTogether(t)
      await runBare(t)
    } else {
      await runBare(t)
      await runTogether(t)
      await runAlone(t)
    }
    const last = together.at(-1)
    ctx.log(
      `  trial ${t + 1}/${ctx.args.trials}: alone ${fmt(alone.at(-1) ?? 0, 0)} ms, ` +
        `${REPLICAS} together: all ready at ${fmt(last?.allReadyMs ?? 0, 0)} ms ` +
        `(each: ${last?.readyMs.map((r) => fmt(r, 0)).join(', ')}); ` +
        `bare: alone ${fmt(bareAlone.at(-1) ?? 0, 0)} ms, ${REPLICAS} together ${fmt(bareEight.at(-1) ?? 0, 0)} ms`,
    )
  }
  const a = median(alone)
  const all = median(together.map((x) => x.allReadyMs))
  const cores = cpus().length
  const bareOne = median(bareAlone)
  const bareAll = median(bareEight)
  // Eight boots need this much CPU; on `cores` cores they cannot all be ready sooner.
  const cpuBound = median(together.map((x) => x.cpuMs.reduce((n, c) => n + c, 0))) / cores
  // How long the others took after the replica that applied the chain was ready.
  const lag = median(
    together.map(
      (x) => x.allReadyMs - (x.readyMs[x.roles.findIndex((r) => r.applied > 0)] ?? Number.NaN),
    ),
  )
  return {
    rows: [
      {
        figure: `${REPLICAS} replicas on an empty DB, all ready (ms)`,
        service: fmt(all, 0),
        baseline: fmt(a, 0),
        ratio: all / a,
        target: '≤ 2.00×',
        met: all / a <= 2,
        note:
          `baseline: one replica alone (CPU to ready ${fmt(median(aloneCpu), 0)} ms). ` +
          `The eight used ${fmt(cpuBound * cores, 0)} ms CPU to get ready: ≥ ${fmt(cpuBound, 0)} ms on ${cores} cores (${fmt(cpuBound / a, 2)}× alone) before any waiting; ` +
          `the last replica was ready ${fmt(lag, 0)} ms after the one that applied the chain (waiting replicas are notified of the release and read the ledger)`,
      },
      {
        figure: `reference: ${REPLICAS} bare processes together (ms)`,
        service: fmt(bareAll, 0),
        baseline: fmt(bareOne, 0),
        ratio: bareAll / bareOne,
        target: 'informational',
        met: null,
        note:
          `the bare process (connect, one query, listen; nothing to migrate) ${REPLICAS} times at once against once alone, ` +
          `on the same machine: ${fmt(median(bareEightCpu), 0)} ms CPU for the eight. ` +
          `The service's ratio is ${fmt(all / a / (bareAll / bareOne), 2)}× this floor's`,
      },
    ],
    notes: [],
    data: {
      aloneMs: alone.map((x) => round(x)),
      aloneCpuMs: aloneCpu,
      together,
      bare: {
        aloneMs: bareAlone.map((x) => round(x)),
        eightMs: bareEight.map((x) => round(x)),
        eightCpuMs: bareEightCpu,
      },
      medians: {
        bareAloneMs: bareOne,
        bareEightMs: bareAll,
        aloneMs: a,
        allReadyMs: all,
        cpuLowerBoundMs: cpuBound,
        lagAfterMigratorMs: lag,
      },
    },
  }
}
