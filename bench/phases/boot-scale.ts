import { join } from 'node:path'
import { writeTrivialChain } from '../lib/chains.js'
import { type Context, startService } from '../lib/context.js'
import { cpuMs, runCommand, timeToFirst200 } from '../lib/procs.js'
import type { PhaseResult } from '../lib/report.js'
import { fmt, median, round } from '../lib/stats.js'

const LARGE = 1000
const SMALL = 3

/**
 * Boot-to-ready of the service on an up-to-date database whose chain (MIGRATIONS_DIR)
 * has 1,000 migrations, against one with 3; both chains applied beforehand, trials alternate.
 */
export async function bootScale(ctx: Context): Promise<PhaseResult> {
  const chains = [
    { count: LARGE, db: 'bench_boot_1000', dir: join(ctx.tmp, `chain-${LARGE}`) },
    { count: SMALL, db: 'bench_boot_3', dir: join(ctx.tmp, `chain-${SMALL}`) },
  ]
  const applyMs: Record<number, number> = {}
  for (const c of chains) {
    await writeTrivialChain(c.dir, c.count)
    const url = await ctx.admin.createDatabase(c.db)
    const { stdout } = await runCommand(process.execPath, [
      join(ctx.root, 'bench', 'lib', 'time-migrator.mjs'),
      ctx.build.dir,
      url,
      c.dir,
    ])
    const out = JSON.parse(stdout) as { upMs: number; applied: number }
    if (out.applied !== c.count) throw new Error(`applied ${out.applied} of ${c.count}`)
    applyMs[c.count] = out.upMs
  }
  ctx.log(
    `boot-scale: applied ${LARGE} migrations in ${fmt(applyMs[LARGE] ?? 0, 0)} ms (engine up())`,
  )

  const boots: Record<number, number[]> = { [LARGE]: [], [SMALL]: [] }
  const cpu: Record<number, number[]> = { [LARGE]: [], [SMALL]: [] }
  for (let t = 0; t < ctx.args.trials; t++) {
    const order = t % 2 === 0 ? chains : [...chains].reverse()
    for (const c of order) {
      const proc = await startService(ctx, `boot-${c.count}-${t}`, {
        DATABASE_URL: ctx.admin.url(c.db),
        MIGRATIONS_DIR: c.dir,
      })
      try {
        boots[c.count]?.push(await timeToFirst200(proc, '/health/ready'))
        cpu[c.count]?.push(await cpuMs(proc.pid))
      } finally {
        await proc.stop()
      }
    }
    ctx.log(
      `  trial ${t + 1}/${ctx.args.trials}: ${LARGE} migrations ${fmt(boots[LARGE]?.at(-1) ?? 0, 0)} ms, ` +
        `${SMALL} migrations ${fmt(boots[SMALL]?.at(-1) ?? 0, 0)} ms`,
    )
  }
  for (const c of chains) await ctx.admin.dropDatabase(c.db)
  const large = median(boots[LARGE] ?? [])
  const small = median(boots[SMALL] ?? [])
  return {
    rows: [
      {
        figure: `Up-to-date boot, ${LARGE} vs ${SMALL} migrations (ms)`,
        service: fmt(large, 0),
        baseline: fmt(small, 0),
        ratio: large / small,
        target: '≤ 1.50×',
        met: large / small <= 1.5,
        note: `CPU to ready ${fmt(median(cpu[LARGE] ?? []), 0)} ms vs ${fmt(median(cpu[SMALL] ?? []), 0)} ms`,
      },
    ],
    notes: [],
    data: {
      bootMs: Object.fromEntries(
        Object.entries(boots).map(([k, v]) => [k, v.map((x) => round(x))]),
      ),
      cpuMs: cpu,
      medians: { [LARGE]: large, [SMALL]: small },
      applyMs,
    },
  }
}
