import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { type AppOptions, buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { ADMIN_TOKEN, AUTH, buildTestApp, type TestApp, watchReadiness } from '../helpers/app.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

/**
 * The request pool when the database is there but does not answer: queries stuck
 * behind a lock, and connections that stop passing data (a failover, a half-open TCP
 * connection). Requests get an answer within DATABASE_QUERY_TIMEOUT_MS (and the pool's
 * 5 s wait for a connection), 503 with Retry-After, and the pool recovers by itself.
 */
const cleanup: Array<() => Promise<unknown>> = []
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {})
})

const timed = async <T>(fn: () => Promise<T>) => {
  const started = performance.now()
  const value = await fn()
  return { value, ms: performance.now() - started }
}

describe('queries stuck behind a lock', () => {
  it('are cancelled after DATABASE_QUERY_TIMEOUT_MS; a request finding the pool full gets 503 after 5 s', async () => {
    const t: TestApp = await buildTestApp({ env: { DATABASE_QUERY_TIMEOUT_MS: '6000' } })
    cleanup.push(() => t.close())
    const locker = new pg.Client({ connectionString: t.db.url })
    await locker.connect()
    cleanup.push(() => locker.end())
    await locker.query('BEGIN; LOCK TABLE player_teams IN ACCESS EXCLUSIVE MODE')

    const roster = () => t.app.inject({ url: '/teams/2/roster', headers: AUTH })
    // Ten take every pool connection and wait on the lock; the eleventh waits for a connection.
    const stuck = Array.from({ length: 10 }, () => timed(roster))
    const pool = t.app.pg.pool
    for (let i = 0; i < 500 && !(pool.totalCount === 10 && pool.idleCount === 0); i++)
      await new Promise((r) => setTimeout(r, 10))
    const queued = await timed(roster)
    const probe = await t.app.inject({ url: '/health/ready' })
    expect(probe.statusCode).toBe(200)

    expect(queued.value.statusCode).toBe(503)
    expect(queued.value.headers['retry-after']).toBe('5')
    expect(queued.value.json()).toMatchObject({
      message: 'the database is unavailable; try again',
    })
    // A `code` is for the 4xx a client can act on; a 5xx says only what and when to retry.
    expect(queued.value.json()).not.toHaveProperty('code')
    expect(queued.ms).toBeGreaterThan(4500)
    expect(queued.ms).toBeLessThan(6000)
    for (const { value, ms } of await Promise.all(stuck)) {
      expect(value.statusCode).toBe(503)
      expect(value.json().message).toBe('the database took too long to answer; try again')
      expect(value.headers['retry-after']).toBe('1')
      expect(value.json()).not.toHaveProperty('code')
      expect(ms).toBeGreaterThan(5500)
      expect(ms).toBeLessThan(8000)
    }
    await locker.query('ROLLBACK')
    expect((await roster()).statusCode).toBe(200)
  })
})

/** A TCP relay to PostgreSQL that can stop passing data on the connections it has, as a failover does. */
async function freezableProxy(target: URL) {
  const pairs = new Set<[Socket, Socket]>()
  const all = new Set<Socket>()
  let freezeNewOnceReady = false
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname)
    const pair: [Socket, Socket] = [client, upstream]
    all.add(client).add(upstream)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    client.pipe(upstream)
    if (freezeNewOnceReady) {
      // Startup and authentication pass, up to the first ReadyForQuery ('Z', length 5);
      // after that the server's answers are held back.
      let ready = false
      upstream.on('data', (chunk: Buffer) => {
        if (ready) return
        client.write(chunk)
        ready = chunk.includes(Buffer.from([0x5a, 0, 0, 0, 5]))
      })
      return
    }
    pairs.add(pair)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = new URL(target)
  url.hostname = '127.0.0.1'
  url.port = String((server.address() as AddressInfo).port)
  return {
    url: url.toString(),
    /** Existing connections stop passing data, unclosed; new ones work. */
    freeze() {
      const frozen = pairs.size
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
      }
      pairs.clear()
      return frozen
    },
    /** Connections opened from now on stop answering once authenticated. */
    freezeNewOnceReady() {
      freezeNewOnceReady = true
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of all) socket.destroy()
      }),
  }
}

/**
 * The app on a copy of the incident database reached through a freezable relay, ready;
 * closed (relay first: a frozen connection's goodbye would otherwise wait forever) and
 * dropped after the file.
 */
async function appThroughRelay(env: Record<string, string>, logger?: AppOptions['logger']) {
  const db: TestDatabase = await createTestDatabase('incident')
  cleanup.push(() => db.drop())
  const proxy = await freezableProxy(new URL(db.url))
  const config = loadConfig({ DATABASE_URL: proxy.url, ADMIN_TOKEN, LOG_LEVEL: 'silent', ...env })
  const app = await buildApp({ config, databaseUrl: proxy.url, adminToken: ADMIN_TOKEN, logger })
  cleanup.push(() => proxy.close().then(() => app.close()))
  await app.ready()
  await app.migrations.supervisor.settled()
  return { db, proxy, app }
}

describe('connections that stop answering', () => {
  it('are given up after the query timeout (503), leave the pool, and the next request gets a new one', async () => {
    const { proxy, app } = await appThroughRelay({
      DATABASE_QUERY_TIMEOUT_MS: '1000',
      // One check at start: the readiness connection is not the subject here.
      HEALTH_CHECK_INTERVAL_MS: '60000',
    })
    expect(app.readiness.reason()).toBeNull()

    const teams = () => app.inject({ url: '/teams', headers: AUTH })
    expect((await teams()).statusCode).toBe(200)
    expect(proxy.freeze()).toBeGreaterThan(0)
    const stuck = await timed(teams)
    expect(stuck.value.statusCode).toBe(503)
    expect(stuck.value.headers['retry-after']).toBe('5')
    expect(stuck.value.json().message).toBe('the database is unavailable; try again')
    // The stall guard gives a connection up after DATABASE_QUERY_TIMEOUT_MS + 1 s of silence.
    expect(stuck.ms).toBeGreaterThan(1800)
    expect(stuck.ms).toBeLessThan(4000)
    expect(app.pg.pool.totalCount).toBe(0)
    expect((await teams()).statusCode).toBe(200)
  })
})

describe('a request connection idle in the pool for longer than the stall time', () => {
  it('is kept, and still given up once it stops answering', async () => {
    // Stall time DATABASE_QUERY_TIMEOUT_MS + 1 s = 1.1 s; the pool keeps idle ones 10 s.
    const { proxy, app } = await appThroughRelay({
      DATABASE_QUERY_TIMEOUT_MS: '100',
      HEALTH_CHECK_INTERVAL_MS: '60000',
    })
    const pid = async () => (await app.pg.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
    const first = await pid()
    await new Promise((r) => setTimeout(r, 1600))
    expect(app.pg.pool.totalCount).toBe(1)
    expect(await pid()).toBe(first)
    // Idle past the stall time again, then frozen: the guard still watches it.
    await new Promise((r) => setTimeout(r, 1600))
    expect(proxy.freeze()).toBeGreaterThan(0)
    const stuck = await timed(() => app.inject({ url: '/teams', headers: AUTH }))
    expect(stuck.value.statusCode).toBe(503)
    expect(stuck.ms).toBeGreaterThan(900)
    expect(stuck.ms).toBeLessThan(3000)
    expect(app.pg.pool.totalCount).toBe(0)
  })
})

describe('a new request connection that stops answering during its set-up query', () => {
  it('is given up too (503), does not keep its pool slot, and is logged once, without the client', async () => {
    const lines: string[] = []
    const { proxy, app } = await appThroughRelay(
      { DATABASE_QUERY_TIMEOUT_MS: '1000', HEALTH_CHECK_INTERVAL_MS: '60000' },
      createLogger('info', { write: (line: string) => void lines.push(line) }),
    )
    expect(app.pg.pool.totalCount).toBe(0)
    proxy.freezeNewOnceReady()
    const stuck = await timed(() => app.inject({ url: '/teams', headers: AUTH }))
    expect(stuck.value.statusCode).toBe(503)
    expect(stuck.ms).toBeGreaterThan(1800)
    expect(stuck.ms).toBeLessThan(4000)
    expect(app.pg.pool.totalCount).toBe(0)
    // One warning or error: the request's failure (not also "idle database connection
    // lost"), and no line with pg-pool's `err.client` (~8 KB of connection state, host and
    // user included).
    const stalls = lines.filter((l) => l.includes('stopped answering') && JSON.parse(l).level >= 40)
    expect(stalls).toHaveLength(1)
    expect(JSON.parse(stalls[0] as string)).toMatchObject({ level: 50, msg: 'request failed' })
    expect(lines.some((l) => l.includes('idle database connection lost'))).toBe(false)
    for (const line of lines) expect(line).not.toContain('"client"')
  })
})

describe('the health check connection ended by the server, the database fine', () => {
  it('does not turn readiness to database-unavailable: a new connection is tried first', async () => {
    const t: TestApp = await buildTestApp({ env: { HEALTH_CHECK_INTERVAL_MS: '100' } })
    cleanup.push(() => t.close())
    const stop = watchReadiness(t.app)
    const terminate = () =>
      t.app.pg.query(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = 'basketball-api:health' AND datname = current_database()`,
      )
    for (let i = 0; i < 5; i++) {
      expect((await terminate()).rows[0].n).toBe(1)
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(await stop()).toEqual([null])
    expect(t.app.readiness.database()).toMatchObject({ up: true, error: null })
  })
})

describe('the health check connection stops answering, new connections work (a failover)', () => {
  it('readiness stays ready: the check gives the old connection up and one new connection answers', async () => {
    const { proxy, app } = await appThroughRelay({ HEALTH_CHECK_INTERVAL_MS: '300' })
    await new Promise((r) => setTimeout(r, 400)) // a check has opened its connection
    expect(app.readiness.reason()).toBeNull()

    const reasons = new Set<string | null>()
    expect(proxy.freeze()).toBeGreaterThan(0)
    // The check's SELECT 1 times out after 500 ms on the frozen connection; then a new one.
    const until = Date.now() + 2500
    while (Date.now() < until) {
      reasons.add(app.readiness.reason())
      await new Promise((r) => setTimeout(r, 10))
    }
    expect([...reasons]).toEqual([null])
    expect(app.readiness.database()).toMatchObject({ up: true })
  })
})

describe('closing while a health check hangs on a connection that stopped answering', () => {
  it('leaves no health session of its own behind: the check in flight ends, nothing stays connected', async () => {
    const { db, proxy, app } = await appThroughRelay({ HEALTH_CHECK_INTERVAL_MS: '300' })
    await new Promise((r) => setTimeout(r, 400))
    const healthPids = () =>
      withClient(db.url, async (c) =>
        (
          await c.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'basketball-api:health' AND datname = current_database()",
          )
        ).rows.map((r) => r.pid),
      )
    const before = await healthPids()
    expect(before).toHaveLength(1)
    expect(proxy.freeze()).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 350)) // the next check now waits on the frozen connection
    const { ms } = await timed(() => app.close())
    expect(ms).toBeLessThan(3000)
    // (The frozen session itself stays until the relay closes: a test artefact.)
    await new Promise((r) => setTimeout(r, 500))
    expect((await healthPids()).filter((pid) => !before.includes(pid))).toEqual([])
  })
})

describe('closing while every database connection has stopped answering', () => {
  it('does not wait for goodbyes the database will never acknowledge', async () => {
    const { proxy, app } = await appThroughRelay({ HEALTH_CHECK_INTERVAL_MS: '200' })
    // A pooled connection too, idle in the pool.
    expect((await app.inject({ url: '/teams/2/roster', headers: AUTH })).statusCode).toBe(200)
    expect(proxy.freeze()).toBeGreaterThan(1)
    const started = performance.now()
    await app.close()
    const ms = performance.now() - started
    console.log(`close with every connection frozen: ${Math.round(ms)} ms`)
    // The health check's goodbye is given up after a second; before, close never returned.
    expect(ms).toBeLessThan(5000)
  })
})
