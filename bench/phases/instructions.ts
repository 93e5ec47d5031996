import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Context, startBare, startService } from '../lib/context.js'
import { load } from '../lib/load.js'
import { type BenchProcess, runCommand, timeToFirst200 } from '../lib/procs.js'
import type { PhaseResult, Row } from '../lib/report.js'
import { fmt } from '../lib/stats.js'
import { ROSTER_TEAM, rosterDatabase } from './side-by-side.js'

const DATABASE = 'bench_instructions'
/** The HOST both processes get: valgrind names its control pipes after $HOST. */
const HOST = '127.0.0.1'

type Kind = 'service' | 'bare'

interface Target {
  figure: string
  path: string
  /** Requests before the first measured window (the JIT's warm-up), and per window. */
  warm: number
  amount: number
}

/**
 * Instructions each process executes per request, counted by valgrind's callgrind: other
 * work on the machine does not inflate them, as it does the CPU times of the other
 * phases. Each process runs under callgrind with counting off; after a warm-up, every
 * window is counted alone (zeroed, on, a fixed number of requests, off, dumped), and the
 * lowest window counts: noise (a collection, a background timer) only adds.
 */
export async function instructions(ctx: Context): Promise<PhaseResult> {
  const version = await runCommand('valgrind', ['--version']).catch(() => null)
  if (!version) {
    const note = 'valgrind is not installed (apt-get install valgrind): phase skipped'
    const row: Row = {
      figure: 'Instructions per request (callgrind)',
      service: 'skipped',
      baseline: '–',
      ratio: null,
      target: 'info',
      met: null,
      note,
    }
    return { rows: [row], notes: [note], data: {} }
  }
  const { url, roster } = await rosterDatabase(ctx, DATABASE, 'instructions')
  const dir = join(ctx.tmp, 'callgrind')
  await mkdir(dir, { recursive: true })
  const scale = ctx.args.quick ? 0.5 : 1
  // Under valgrind V8's optimizing compiler runs late (its threads are serialised), so
  // the counts keep falling for a few thousand requests: a long warm-up, several windows.
  const targets: Target[] = [
    { figure: '/health/ready', path: '/health/ready', warm: 5000, amount: 5000 * scale },
    {
      figure: 'GET /teams/:id/roster',
      path: `/teams/${ROSTER_TEAM}/roster`,
      warm: 5000,
      amount: 2000 * scale,
    },
  ]
  const rounds = ctx.args.quick ? 2 : 4
  const counts: Record<Kind, Record<string, number[]>> = { service: {}, bare: {} }

  for (const kind of ['service', 'bare'] as const) {
    const wrapper = [
      'valgrind',
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${join(dir, `${kind}.%p`)}`,
    ]
    const proc: BenchProcess =
      kind === 'service'
        ? await startService(ctx, 'instructions-service', { DATABASE_URL: url }, { wrapper })
        : await startBare(
            ctx,
            'instructions-bare',
            { DATABASE_URL: url, BENCH_ROSTER_SQL: roster.sql },
            { wrapper },
          )
    try {
      await timeToFirst200(proc, '/health/ready', { timeoutMs: 180_000, everyMs: 200 })
      const control = (...args: string[]) =>
        runCommand('callgrind_control', [...args, String(proc.pid)], {
          env: { ...process.env, HOST },
        })
      for (const target of targets) {
        const headers: Record<string, string> =
          kind === 'service' && target.path !== '/health/ready'
            ? { authorization: `Bearer ${ctx.adminToken}` }
            : {}
        const run = (amount: number) =>
          load({
            url: `${proc.base}${target.path}`,
            seconds: 600,
            amount,
            connections: ctx.args.connections,
            headers,
          })
        await run(target.warm)
        const perRequest: number[] = []
        for (let round = 0; round < rounds; round++) {
          await control('-z')
          await control('-i', 'on')
          const result = await run(target.amount)
          await control('-i', 'off')
          await control('-d')
          if (result.non2xx > 0 || result.errors > 0) {
            throw new Error(
              `${kind} ${target.path}: ${result.non2xx} non-2xx, ${result.errors} errors`,
            )
          }
          perRequest.push((await lastDumpTotal(dir, kind, proc.pid)) / result.requests)
        }
        counts[kind][target.figure] = perRequest
        ctx.log(
          `  ${kind.padEnd(7)} ${target.figure}: ${perRequest.map((n) => fmt(n, 0)).join(', ')} instructions per request`,
        )
      }
    } finally {
      await proc.stop()
    }
  }

  const rows: Row[] = targets.map((target) => {
    const service = Math.min(...(counts.service[target.figure] ?? []))
    const bare = Math.min(...(counts.bare[target.figure] ?? []))
    return {
      figure: `Instructions per ${target.figure} (callgrind)`,
      service: fmt(service, 0),
      baseline: fmt(bare, 0),
      ratio: service / bare,
      target: 'info',
      met: null,
      note: `lowest of ${rounds} windows of ${fmt(target.amount, 0)} requests after ${fmt(target.warm, 0)} to warm up; the whole process (background timers included), counted by valgrind: not slowed by other work on the machine, unlike CPU time`,
    }
  })
  await ctx.admin.dropDatabase(DATABASE)
  return { rows, notes: [], data: { counts } }
}

/** The `totals:` of the newest dump callgrind wrote for this process (`<kind>.<pid>.<n>`). */
async function lastDumpTotal(dir: string, kind: Kind, pid: number): Promise<number> {
  const prefix = `${kind}.${pid}.`
  const dumps = (await readdir(dir))
    .filter((f) => f.startsWith(prefix))
    .map((f) => Number(f.slice(prefix.length)))
    .filter(Number.isInteger)
  if (dumps.length === 0) throw new Error(`callgrind wrote no dump for ${kind} (pid ${pid})`)
  const text = await readFile(join(dir, `${prefix}${Math.max(...dumps)}`), 'utf8')
  const total = /^totals:\s+(\d+)/m.exec(text)?.[1]
  if (total === undefined) throw new Error(`no totals in callgrind's dump for ${kind}`)
  return Number(total)
}
