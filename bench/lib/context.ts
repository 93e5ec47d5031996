import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { BenchArgs } from './args.js'
import type { Build } from './build.js'
import type { Admin } from './db.js'
import { type BenchProcess, spawnNode, uniquePort } from './procs.js'

/** What every phase gets: flags, the build under test, the database server, a temp folder. */
export interface Context {
  root: string
  args: BenchArgs
  build: Build
  admin: Admin
  /** A temp folder of this run (generated migration chains, the psql script). */
  tmp: string
  adminToken: string
  log(message: string): void
}

export interface ServiceEnv {
  DATABASE_URL: string
  MIGRATIONS_DIR?: string
  LOG_LEVEL?: string
}

/** `node --cpu-prof` arguments when the run was asked to profile. */
async function profileArgs(ctx: Context, name: string): Promise<string[]> {
  if (!ctx.args.profile) return []
  const dir = join(ctx.root, 'bench', 'results', 'profiles')
  await mkdir(dir, { recursive: true })
  return [
    '--cpu-prof',
    '--cpu-prof-dir',
    dir,
    '--cpu-prof-name',
    `${name}-${Date.now()}.cpuprofile`,
  ]
}

/** Starts `node <build>/server.js` on a free loopback port. */
export async function startService(
  ctx: Context,
  name: string,
  env: ServiceEnv,
  opts: { keepStdout?: boolean } = {},
): Promise<BenchProcess & { stdout(): string }> {
  const port = await uniquePort()
  const args = await profileArgs(ctx, name)
  args.push(join(ctx.build.dir, 'server.js'))
  return spawnNode({
    name,
    args,
    port,
    keepStdout: opts.keepStdout,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_TOKEN: ctx.adminToken,
      LOG_LEVEL: ctx.args.logLevel,
      ...env,
    },
  })
}

/** Starts the bare Fastify + pg baseline on a free loopback port. */
export async function startBare(
  ctx: Context,
  name: string,
  env: { DATABASE_URL: string; BENCH_ROSTER_SQL: string },
): Promise<BenchProcess> {
  const port = await uniquePort()
  const args = await profileArgs(ctx, name)
  args.push(join(ctx.root, 'bench', 'baseline', 'bare-server.mjs'))
  return spawnNode({
    name,
    args,
    port,
    env: { HOST: '127.0.0.1', PORT: String(port), ...env },
  })
}
