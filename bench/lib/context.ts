import { mkdir, readdir } from 'node:fs/promises'
import module from 'node:module'
import { join } from 'node:path'
import type { BenchArgs } from './args.js'
import type { Build } from './build.js'
import type { Admin } from './db.js'
import { type BenchProcess, runCommand, spawnNode, uniquePort } from './procs.js'

/** What every phase gets: flags, the build under test, the database server, a temp folder. */
export interface Context {
  root: string
  args: BenchArgs
  build: Build
  admin: Admin
  /** A temp folder of this run (generated migration chains, the psql script). */
  tmp: string
  adminToken: string
  /** NODE_COMPILE_CACHE folders of the service and the bare process (`--compile-cache`). */
  compileCache: { service: string; bare: string } | null
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
  opts: { keepStdout?: boolean; wrapper?: string[] } = {},
): Promise<BenchProcess & { stdout(): string }> {
  const port = await uniquePort()
  const args = await profileArgs(ctx, name)
  args.push(join(ctx.build.dir, 'server.js'))
  return spawnNode({
    name,
    args,
    port,
    keepStdout: opts.keepStdout,
    wrapper: opts.wrapper,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_TOKEN: ctx.adminToken,
      LOG_LEVEL: ctx.args.logLevel,
      ...(ctx.compileCache && { NODE_COMPILE_CACHE: ctx.compileCache.service }),
      ...env,
    },
  })
}

/** Starts the bare Fastify + pg baseline on a free loopback port. */
export async function startBare(
  ctx: Context,
  name: string,
  env: { DATABASE_URL: string; BENCH_ROSTER_SQL: string },
  opts: { wrapper?: string[] } = {},
): Promise<BenchProcess> {
  const port = await uniquePort()
  const args = await profileArgs(ctx, name)
  args.push(join(ctx.root, 'bench', 'baseline', 'bare-server.mjs'))
  return spawnNode({
    name,
    args,
    port,
    wrapper: opts.wrapper,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      ...(ctx.compileCache && { NODE_COMPILE_CACHE: ctx.compileCache.bare }),
      ...env,
    },
  })
}

/**
 * Fills a compile cache for each side before anything is measured, the same way: a
 * start that stops after every static import compiled. The service's is the image's
 * own step (scripts/warm-compile-cache.mjs: an invalid PORT); the bare process stops
 * at its missing DATABASE_URL. Node writes both caches at exit.
 */
export async function fillCompileCaches(
  root: string,
  buildDir: string,
  tmp: string,
): Promise<{ service: string; bare: string }> {
  if (!('enableCompileCache' in module)) {
    throw new Error(`--compile-cache needs Node 22.1 or later (this is ${process.version})`)
  }
  const caches = {
    service: join(tmp, 'compile-cache-service'),
    bare: join(tmp, 'compile-cache-bare'),
  }
  await runCommand(process.execPath, [
    join(root, 'scripts', 'warm-compile-cache.mjs'),
    caches.service,
    buildDir,
  ])
  const bare = await runCommand(
    process.execPath,
    [join(root, 'bench', 'baseline', 'bare-server.mjs')],
    { env: { PATH: process.env.PATH ?? '', NODE_COMPILE_CACHE: caches.bare } },
  ).then(
    () => new Error('the bare process started without DATABASE_URL'),
    (err: Error) =>
      /DATABASE_URL and BENCH_ROSTER_SQL are required/.test(err.message) ? null : err,
  )
  if (bare) throw bare
  for (const dir of Object.values(caches)) {
    const entries = await readdir(dir, { recursive: true }).catch(() => [])
    if (entries.length < 2) throw new Error(`node wrote no compile cache to ${dir}`)
  }
  return caches
}
