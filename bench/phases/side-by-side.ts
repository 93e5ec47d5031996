import { join } from 'node:path'
import { type Context, startBare, startService } from '../lib/context.js'
import { seedRosters } from '../lib/db.js'
import { type LoadResult, load } from '../lib/load.js'
import {
  type BenchProcess,
  cpuMs,
  kernelShare,
  machineCpuMs,
  postmasterOf,
  probe,
  rssMiB,
  runCommand,
  serverCpuMs,
  timeToFirst200,
} from '../lib/procs.js'
import type { PhaseResult, Row } from '../lib/report.js'
import { findRosterSql } from '../lib/roster.js'
import { fmt, median, round, sleep } from '../lib/stats.js'

const DATABASE = 'bench_app'
export const ROSTER_TEAM = 100
/** The readiness plugin's default background `SELECT 1` period (HEALTH_CHECK_INTERVAL_MS). */
const HEALTH_CHECK_MS = 2000

type Kind = 'service' | 'bare'

interface QueryCheck {
  /** Committed transactions of the service's database over the probe load (pg_stat_database). */
  transactions: number
  /** What the background `SELECT 1` accounts for over that window. */
  expectedBackground: number
  windowMs: number
  probes: number
  /** (transactions − expected background) / probes, floored at 0. */
  perProbe: number
  /** Service sessions other than the health check that started a statement during the load. */
  activeSessions: Array<{ application: string; query: string }>
}

interface Sample {
  run: number
  kind: Kind
  bootMs: number
  /** CPU time the process used from start to its first 200 (robust to a busy machine). */
  bootCpuMs: number
  rssMiB: number
  ready: LoadResult
  /** Server CPU per answered probe (µs): what the throughput ratio would be on an idle box. */
  readyCpuUs: number
  roster: LoadResult | null
  /** The roster load's CPU, every party of it. */
  rosterCpu: CpuAccount | null
  queries?: QueryCheck
}

/**
 * Where a load's CPU went, per 2xx answer (µs): the server process, the PostgreSQL
 * server (null when it is not on this machine), this process (autocannon), and the
 * machine's idle share of the window. On a saturated machine the throughput ratio is
 * the inverse ratio of the three added up, not of the server's alone.
 */
interface CpuAccount {
  serverUs: number
  /** Of `serverUs`, the kernel's (system time). */
  serverSysUs: number
  /** Context switches of the server's main thread per answer (its wake-ups). */
  serverSwitches: number
  postgresUs: number | null
  clientUs: number
  idle: number
}

/** Load plus the CPU accounts of its window. */
async function measuredLoad(
  pid: number,
  postmaster: number | null,
  opts: Parameters<typeof load>[0],
): Promise<{ result: LoadResult; cpu: CpuAccount }> {
  const take = async () => ({
    server: await cpuMs(pid),
    kernel: await kernelShare(pid),
    postgres: postmaster === null ? null : await serverCpuMs(postmaster),
    client: process.cpuUsage(),
    machine: await machineCpuMs(),
  })
  const before = await take()
  const result = await load(opts)
  const after = await take()
  const per = (ms: number) => (ms * 1000) / Math.max(1, result.requests)
  const client = process.cpuUsage(before.client)
  const total = after.machine.total - before.machine.total
  const cpu: CpuAccount = {
    serverUs: per(after.server - before.server),
    serverSysUs: per(after.kernel.sysMs - before.kernel.sysMs),
    serverSwitches: (after.kernel.switches - before.kernel.switches) / Math.max(1, result.requests),
    postgresUs: postmaster === null ? null : per((after.postgres ?? 0) - (before.postgres ?? 0)),
    clientUs: (client.user + client.system) / Math.max(1, result.requests),
    idle: total > 0 ? 1 - (after.machine.busy - before.machine.busy) / total : Number.NaN,
  }
  return { result, cpu }
}

/**
 * A new database `name` with the built-in chain applied and rosters seeded, and the
 * roster SQL the service runs (read from src/, for the bare handler).
 */
export async function rosterDatabase(ctx: Context, name: string, phase: string) {
  const url = await ctx.admin.createDatabase(name)
  ctx.log(`${phase}: applying the built-in chain to ${name} and seeding rosters`)
  await runCommand(process.execPath, [
    join(ctx.root, 'bench', 'lib', 'time-migrator.mjs'),
    ctx.build.dir,
    url,
    join(ctx.build.dir, 'migrations'),
  ])
  await seedRosters(url)
  const roster = await findRosterSql(ctx.root)
  ctx.log(`${phase}: ${roster.note}`)
  return { url, roster }
}

/**
 * Service and bare baseline side by side, alternating within each run (service
 * first on even runs, bare first on odd ones). Per process: spawn → first 200 on
 * /health/ready (boot-to-ready), a short warm-up, VmRSS, probe load, roster load, stop.
 */
export async function sideBySide(ctx: Context): Promise<PhaseResult> {
  const { args, admin } = ctx
  const { url, roster } = await rosterDatabase(ctx, DATABASE, 'side-by-side')
  const notes: string[] = [roster.note]
  let rosterStatus: number | null = null
  // The PostgreSQL server's own processes, when it runs here (embedded or a local install).
  const postmaster = await postmasterOf(await admin.backendPid())
  const samples: Sample[] = []
  const warmSeconds = args.quick ? 1 : 2

  const measure = async (run: number, kind: Kind): Promise<Sample> => {
    const proc: BenchProcess =
      kind === 'service'
        ? await startService(ctx, `service-${run}`, { DATABASE_URL: url })
        : await startBare(ctx, `bare-${run}`, { DATABASE_URL: url, BENCH_ROSTER_SQL: roster.sql })
    try {
      const bootMs = await timeToFirst200(proc, '/health/ready')
      const bootCpuMs = await cpuMs(proc.pid)
      await load({
        url: `${proc.base}/health/ready`,
        seconds: warmSeconds,
        connections: args.connections,
      })
      await sleep(250)
      const rss = await rssMiB(proc.pid)

      let before = 0
      let since = ''
      let startedAt = 0
      if (kind === 'service') {
        before = await admin.xactCommit(DATABASE)
        since = await admin.now()
        startedAt = performance.now()
      }
      const { result: ready, cpu: readyCpu } = await measuredLoad(proc.pid, postmaster, {
        url: `${proc.base}/health/ready`,
        seconds: args.loadSeconds,
        connections: args.connections,
      })
      let queries: QueryCheck | undefined
      if (kind === 'service') {
        // An idle backend reports its counters at most once a second: let them land.
        await sleep(1500)
        const after = await admin.xactCommit(DATABASE)
        const windowMs = performance.now() - startedAt
        const active = await admin.sessionsActiveSince(DATABASE, 'basketball-api', since)
        const expectedBackground = Math.ceil(windowMs / HEALTH_CHECK_MS)
        const transactions = after - before
        queries = {
          transactions,
          expectedBackground,
          windowMs: Math.round(windowMs),
          probes: ready.requests + ready.non2xx,
          perProbe: Math.max(0, transactions - expectedBackground) / Math.max(1, ready.requests),
          activeSessions: active
            .filter((s) => s.application !== 'basketball-api:health')
            .map((s) => ({ application: s.application, query: s.query.slice(0, 200) })),
        }
      }

      let rosterResult: LoadResult | null = null
      let rosterCpu: CpuAccount | null = null
      const headers: Record<string, string> =
        kind === 'service' ? { authorization: `Bearer ${ctx.adminToken}` } : {}
      const rosterUrl = `${proc.base}/teams/${ROSTER_TEAM}/roster`
      if (kind === 'service') rosterStatus = await rosterProbe(rosterUrl, headers)
      if (rosterStatus === 200) {
        await load({ url: rosterUrl, seconds: 1, connections: args.connections, headers })
        const measured = await measuredLoad(proc.pid, postmaster, {
          url: rosterUrl,
          seconds: args.loadSeconds,
          connections: args.connections,
          headers,
        })
        rosterResult = measured.result
        rosterCpu = measured.cpu
      }
      return {
        run,
        kind,
        bootMs,
        bootCpuMs,
        rssMiB: rss,
        ready,
        readyCpuUs: readyCpu.serverUs,
        roster: rosterResult,
        rosterCpu,
        queries,
      }
    } finally {
      await proc.stop()
    }
  }

  for (let run = 0; run < args.runs; run++) {
    const order: Kind[] = run % 2 === 0 ? ['service', 'bare'] : ['bare', 'service']
    for (const kind of order) {
      const s = await measure(run, kind)
      samples.push(s)
      ctx.log(
        `  run ${run + 1}/${args.runs} ${kind.padEnd(7)} boot ${fmt(s.bootMs, 0)} ms (cpu ${fmt(s.bootCpuMs, 0)}), ` +
          `rss ${fmt(s.rssMiB, 1)} MiB, ready ${fmt(s.ready.rps, 0)} rps p99 ${fmt(s.ready.p99Ms, 2)} ms ${fmt(s.readyCpuUs, 1)} µs cpu/req` +
          (s.roster
            ? `, roster ${fmt(s.roster.rps, 0)} rps p99 ${fmt(s.roster.p99Ms, 2)} ms ${cpuLine(s.rosterCpu)}`
            : '') +
          (s.queries
            ? `, db xacts ${s.queries.transactions} (background ≈${s.queries.expectedBackground})`
            : ''),
      )
    }
  }

  const of = (kind: Kind, pick: (s: Sample) => number | undefined) =>
    median(samples.filter((s) => s.kind === kind).map((s) => pick(s) ?? Number.NaN))
  const both = (pick: (s: Sample) => number | undefined) => ({
    service: of('service', pick),
    bare: of('bare', pick),
  })
  const boot = both((s) => s.bootMs)
  const bootCpu = both((s) => s.bootCpuMs)
  const readyCpu = both((s) => s.readyCpuUs)
  const rss = both((s) => s.rssMiB)
  const ready = {
    service: of('service', (s) => s.ready.rps),
    bare: of('bare', (s) => s.ready.rps),
    serviceP99: of('service', (s) => s.ready.p99Ms),
    bareP99: of('bare', (s) => s.ready.p99Ms),
  }
  const bad = samples.filter((s) => s.ready.non2xx > 0 || s.ready.errors > 0)
  if (bad.length > 0) notes.push(`${bad.length} probe loads saw non-2xx answers or errors`)
  const checks = samples.flatMap((s) => (s.queries ? [s.queries] : []))
  const excess = Math.max(...checks.map((q) => q.transactions - q.expectedBackground))
  const maxTransactions = Math.max(...checks.map((q) => q.transactions))
  const maxBackground = Math.max(...checks.map((q) => q.expectedBackground))
  const sessions = checks.flatMap((q) => q.activeSessions)
  const probes = checks.reduce((n, q) => n + q.probes, 0)
  // A query per probe would add about one transaction per probe; what is left above the
  // background check is other server activity (autovacuum). Sessions must show nothing.
  const perWindow = probes / Math.max(1, checks.length)
  const zeroQueries = sessions.length === 0 && excess < 0.01 * perWindow

  const rows: Row[] = [
    {
      figure: 'Boot-to-ready, up-to-date DB (ms)',
      service: fmt(boot.service, 0),
      baseline: fmt(boot.bare, 0),
      ratio: boot.service / boot.bare,
      target: '≤ 1.30×',
      met: boot.service / boot.bare <= 1.3,
      note: `CPU used from start to ready: ${fmt(bootCpu.service, 0)} ms vs ${fmt(bootCpu.bare, 0)} ms (${fmt(bootCpu.service / bootCpu.bare, 2)}×)`,
    },
    {
      figure: '/health/ready throughput (req/s)',
      service: fmt(ready.service, 0),
      baseline: fmt(ready.bare, 0),
      ratio: ready.service / ready.bare,
      target: '≥ 0.95×',
      met: ready.service / ready.bare >= 0.95,
      note: `autocannon shares the 2 cores: when it is the bottleneck, this ratio flatters the service; see CPU per probe (server-bound estimate ${fmt(readyCpu.bare / readyCpu.service, 2)}×)`,
    },
    {
      figure: '/health/ready server CPU per probe (µs)',
      service: fmt(readyCpu.service, 1),
      baseline: fmt(readyCpu.bare, 1),
      ratio: readyCpu.service / readyCpu.bare,
      target: '≤ 1.05×',
      met: readyCpu.service / readyCpu.bare <= 1 / 0.95,
      note: 'the throughput target where the server, not autocannon on the same cores, is the bottleneck (1/0.95)',
    },
    {
      figure: '/health/ready p99 latency (ms)',
      service: fmt(ready.serviceP99, 2),
      baseline: fmt(ready.bareP99, 2),
      ratio: null,
      target: '< 2 ms',
      met: ready.serviceP99 < 2,
    },
    {
      figure: 'DB queries per probe',
      service: `${fmt(Math.max(0, excess) / Math.max(1, perWindow), 5)}`,
      baseline: '–',
      ratio: null,
      target: '0',
      met: zeroQueries,
      note: `pg_stat_database.xact_commit of the service's database over each probe load (~${fmt(perWindow, 0)} probes): at most ${maxTransactions} transactions, the background SELECT 1 (every ${HEALTH_CHECK_MS} ms) accounts for up to ${maxBackground}; pg_stat_activity: ${sessions.length} service sessions besides the health check's started a statement during the loads`,
    },
  ]
  const rosterSamples = samples.filter((s) => s.roster)
  if (rosterStatus === 200 && rosterSamples.length > 0) {
    const rosterP99 = both((s) => s.roster?.p99Ms)
    const rosterCpu = both((s) => s.rosterCpu?.serverUs)
    const rosterSys = both((s) => s.rosterCpu?.serverSysUs)
    const rosterSwitches = both((s) => s.rosterCpu?.serverSwitches)
    const pgCpu = both((s) => s.rosterCpu?.postgresUs ?? undefined)
    const clientCpu = both((s) => s.rosterCpu?.clientUs)
    const idle = both((s) => s.rosterCpu?.idle)
    const { service: svc, bare } = both((s) => s.roster?.rps)
    rows.push({
      figure: 'GET /teams/:id/roster (req/s)',
      service: fmt(svc, 0),
      baseline: fmt(bare, 0),
      ratio: svc / bare,
      target: '≥ 0.90×',
      met: svc / bare >= 0.9,
      note: `p99 ${fmt(rosterP99.service, 2)} ms vs ${fmt(rosterP99.bare, 2)} ms`,
    })
    rows.push({
      figure: 'Roster server CPU per request (µs)',
      service: fmt(rosterCpu.service, 1),
      baseline: fmt(rosterCpu.bare, 1),
      ratio: rosterCpu.service / rosterCpu.bare,
      target: 'info',
      met: null,
      note:
        'node process only (PostgreSQL excluded): the service-side overhead per roster request; ' +
        `of it the kernel's ${fmt(rosterSys.service, 1)} vs ${fmt(rosterSys.bare, 1)} µs; ` +
        `main-thread context switches per request ${fmt(rosterSwitches.service, 2)} vs ${fmt(rosterSwitches.bare, 2)}`,
    })
    if (postmaster !== null) {
      rows.push({
        figure: 'Roster PostgreSQL CPU per request (µs)',
        service: fmt(pgCpu.service, 1),
        baseline: fmt(pgCpu.bare, 1),
        ratio: pgCpu.service / pgCpu.bare,
        target: 'info',
        met: null,
        note: 'every process of the PostgreSQL server over the load: the same SQL should cost the same',
      })
    }
    rows.push({
      figure: 'Roster CPU of autocannon per request (µs)',
      service: fmt(clientCpu.service, 1),
      baseline: fmt(clientCpu.bare, 1),
      ratio: clientCpu.service / clientCpu.bare,
      target: 'info',
      met: null,
      note: `the bench process; machine idle over the load: ${fmt(idle.service * 100, 1)}% vs ${fmt(idle.bare * 100, 1)}% (near 0: the cores are the bottleneck, and the req/s ratio follows the sum of the three CPU rows)`,
    })
  } else {
    const why =
      rosterStatus === 404
        ? 'GET /teams/:id/roster does not exist in this build yet: roster benchmark skipped'
        : `GET /teams/:id/roster answered ${rosterStatus}: roster benchmark skipped`
    notes.push(why)
    rows.push({
      figure: 'GET /teams/:id/roster (req/s)',
      service: 'skipped',
      baseline: '–',
      ratio: null,
      target: '≥ 0.90×',
      met: null,
      note: why,
    })
  }
  rows.push({
    figure: 'Resident memory once ready (MiB)',
    service: fmt(rss.service, 1),
    baseline: fmt(rss.bare, 1),
    ratio: rss.service / rss.bare,
    target: '≤ 1.20×',
    met: rss.service / rss.bare <= 1.2,
  })
  await admin.dropDatabase(DATABASE)
  return {
    rows,
    notes,
    data: {
      medians: { boot, bootCpu, rss, ready, readyCpu },
      roster: { sql: roster.sql, source: roster.source, status: rosterStatus },
      queryCheck: { method: 'pg_stat_database.xact_commit delta + pg_stat_activity', checks },
      samples: samples.map((s) => ({
        ...s,
        bootMs: round(s.bootMs),
        rssMiB: round(s.rssMiB),
      })),
    },
  }
}

function cpuLine(cpu: CpuAccount | null): string {
  if (!cpu) return ''
  const pg = cpu.postgresUs === null ? '' : ` + pg ${fmt(cpu.postgresUs, 1)}`
  return `cpu/req ${fmt(cpu.serverUs, 1)} (sys ${fmt(cpu.serverSysUs, 1)}, ${fmt(cpu.serverSwitches, 2)} switches)${pg} + client ${fmt(cpu.clientUs, 1)} µs, idle ${fmt(cpu.idle * 100, 1)}%`
}

/** The roster route's status for the admin; 404 means the route is not there yet. */
async function rosterProbe(url: string, headers: Record<string, string>): Promise<number> {
  if (Object.keys(headers).length === 0) return probe(url)
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) }).catch(() => null)
  if (!res) return 0
  await res.arrayBuffer().catch(() => {})
  return res.status
}
