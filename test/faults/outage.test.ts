import { type AddressInfo, createServer, type Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { ADMIN_TOKEN, AUTH } from '../helpers/app.js'
import { getJson, sleep, until } from '../helpers/faults.js'
import { databaseUrl, withClient } from '../helpers/postgres.js'
import { type ServiceProcess, startService } from '../helpers/process.js'
import {
  type RestartablePostgres,
  startRestartablePostgres,
} from '../helpers/restartable-postgres.js'

/**
 * Database outages, on a PostgreSQL of the test's own that it stops (fast
 * shutdown) and starts again on the same data directory and port. Readiness
 * follows the background `SELECT 1` (HEALTH_CHECK_INTERVAL_MS), liveness never
 * depends on the database, and the service recovers without a restart.
 */
const PROBE_MS = 500
const SLACK_MS = 2000

interface Probe {
  at: number
  ready: number | string
  reason?: string
  live: number | string
}

/** Polls /health/ready and /health/live together every `everyMs` until stopped. */
function probeLoop(base: string, everyMs = 50) {
  const probes: Probe[] = []
  let on = true
  const status = async (path: string) => {
    try {
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(2000) })
      const body = (await res.json()) as { reason?: string }
      return { status: res.status, reason: body.reason }
    } catch (err) {
      return { status: `error: ${(err as Error).message}`, reason: undefined }
    }
  }
  const done = (async () => {
    while (on) {
      const at = performance.now()
      const [ready, live] = await Promise.all([status('/health/ready'), status('/health/live')])
      probes.push({
        at,
        ready: ready.status,
        live: live.status,
        ...(ready.reason ? { reason: ready.reason } : {}),
      })
      await sleep(everyMs)
    }
  })()
  return {
    probes,
    /** The first probe at or after `from` that `accept`s. */
    firstAfter(from: number, accept: (p: Probe) => boolean) {
      return probes.find((p) => p.at >= from && accept(p))
    },
    async stop() {
      on = false
      await done
    },
  }
}

async function waitProbe(
  loop: ReturnType<typeof probeLoop>,
  from: number,
  accept: (p: Probe) => boolean,
  timeoutMs: number,
): Promise<Probe> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    const hit = loop.firstAfter(from, accept)
    if (hit) return hit
    await sleep(20)
  }
  throw new Error(
    `no matching probe within ${timeoutMs} ms; last: ${JSON.stringify(loop.probes.at(-1))}`,
  )
}

/** How many probes gave each ready answer: `{ "503 database-unavailable": 57 }`. */
const countBy = (probes: Probe[]) =>
  probes.reduce<Record<string, number>>((acc, p) => {
    const key = `${p.ready} ${p.reason ?? ''}`.trim()
    acc[key] = (acc[key] ?? 0) + 1
    return acc
  }, {})

const unavailable = (p: Probe) => p.ready === 503 && p.reason === 'database-unavailable'

describe('the database goes away and comes back', () => {
  let pgr: RestartablePostgres
  let service: ServiceProcess | undefined

  beforeAll(async () => {
    pgr = await startRestartablePostgres()
    console.log(`outage tests on PostgreSQL ${pgr.version} (${pgr.source}), port ${pgr.port}`)
  }, 120_000)
  afterEach(async () => {
    await service?.stop('SIGKILL')
    service = undefined
  })
  afterAll(async () => {
    await pgr?.destroy()
  })

  const createDatabase = async (name: string) => {
    if (!pgr.running()) await pgr.start()
    await withClient(pgr.url, (c) => c.query(`CREATE DATABASE ${name}`))
    const url = databaseUrl(pgr.url, name)
    await new Migrator({ connectionString: url }).up()
    return url
  }

  it('while serving: readiness turns database-unavailable within a probe period, liveness stays 200, ready again by itself', async () => {
    const url = await createDatabase('outage_serving')
    service = await startService({
      DATABASE_URL: url,
      ADMIN_TOKEN,
      HEALTH_CHECK_INTERVAL_MS: String(PROBE_MS),
    })
    await service.waitFor('/health/ready', (s) => s === 200, 30_000)
    const loop = probeLoop(service.base)
    await sleep(500)

    const stopping = performance.now()
    await pgr.stop()
    const stopped = performance.now()
    const down = await waitProbe(loop, stopping, unavailable, PROBE_MS + SLACK_MS + 2000)
    const detectMs = down.at - stopping

    // Down for a while: readiness keeps failing, liveness keeps passing, the admin still gets /migrations.
    await sleep(3000)
    const health = await getJson(`${service.base}/health`)
    expect(health.status).toBe(503)
    expect(health.body.status).toBe('fail')
    expect(health.body.checks['database:connection'][0].status).toBe('fail')
    // The driver's error text is the admin's: without the token, only that it failed.
    expect(health.body.checks['database:connection'][0]).not.toHaveProperty('output')
    const detailed = await getJson(`${service.base}/health`, AUTH)
    expect(detailed.body.checks['database:connection'][0].output).toEqual(expect.any(String))
    const admin = await getJson(`${service.base}/migrations`, AUTH)
    expect(admin.status).toBe(200)
    expect(admin.body).toMatchObject({ state: 'complete', applied: 23, pending: 0 })

    const starting = performance.now()
    await pgr.start()
    const started = performance.now()
    const back = await waitProbe(loop, started, (p) => p.ready === 200, PROBE_MS + SLACK_MS + 5000)
    const recoverMs = back.at - started
    await sleep(300)
    await loop.stop()

    const outage = loop.probes.filter((p) => p.at >= down.at && p.at < starting)
    console.log(
      `outage while serving: DB stop took ${Math.round(stopped - stopping)} ms; readiness 503 database-unavailable` +
        ` ${Math.round(detectMs)} ms after the stop began (probe period ${PROBE_MS} ms);` +
        ` ${outage.length} probes during the outage, live always 200: ${outage.every((p) => p.live === 200)};` +
        ` DB start took ${Math.round(started - starting)} ms; ready ${Math.round(recoverMs)} ms after the DB was up;` +
        ` answers while down: ${JSON.stringify(countBy(outage))}`,
    )
    expect(detectMs).toBeLessThan(PROBE_MS + SLACK_MS)
    expect(outage.length).toBeGreaterThan(10)
    expect(outage.every((p) => p.live === 200)).toBe(true)
    expect(outage.every(unavailable)).toBe(true)
    // Liveness never failed at any point, before, during or after.
    expect(loop.probes.filter((p) => p.live !== 200)).toEqual([])
    expect(recoverMs).toBeLessThan(PROBE_MS + SLACK_MS)
    expect(service.logs.some((l) => l.msg === 'database unreachable')).toBe(true)
    expect(service.logs.some((l) => l.msg === 'database reachable again')).toBe(true)
    expect(service.child.exitCode).toBeNull()
    expect(await service.stop('SIGTERM')).toEqual({ code: 0, signal: null })
  })

  it('at boot: alive but not ready while the database is down, ready by itself once it is up', async () => {
    const url = await createDatabase('outage_boot')
    await pgr.stop()
    service = await startService({
      DATABASE_URL: url,
      ADMIN_TOKEN,
      HEALTH_CHECK_INTERVAL_MS: String(PROBE_MS),
    })
    await service.waitFor('/health/live', (s) => s === 200, 30_000)
    const loop = probeLoop(service.base)
    const first = await waitProbe(loop, 0, unavailable, PROBE_MS + SLACK_MS + 2000)
    // Long enough for the supervisor's retry backoff (1 s, doubling) to grow past a probe period.
    await sleep(8000)
    const admin = await getJson(`${service.base}/migrations`, AUTH)
    expect(admin.status).toBe(200)
    // No SQLSTATE: the contract's `code` is null; Node's code is in the message.
    expect(admin.body.lastError).toMatchObject({ code: null })
    expect(admin.body.lastError.message).toContain('ECONNREFUSED')
    expect(admin.body.nextAttemptAt).not.toBeNull()
    // The ledger was never read: the whole chain, none applied, as many as `pending` says.
    expect(admin.body.pending).toBeGreaterThan(0)
    expect(admin.body.migrations).toHaveLength(admin.body.pending)
    expect(new Set(admin.body.migrations.map((m: { status: string }) => m.status))).toEqual(
      new Set(['pending']),
    )

    const starting = performance.now()
    await pgr.start()
    const started = performance.now()
    const back = await waitProbe(loop, started, (p) => p.ready === 200, 70_000)
    const recoverMs = back.at - started
    await loop.stop()

    const outage = loop.probes.filter((p) => p.at >= first.at && p.at < starting)
    const attempts = service.logs.filter((l) => l.msg === 'database unavailable; will retry')
    console.log(
      `outage at boot: ${outage.length} probes while down, all live 200 and ready 503 database-unavailable:` +
        ` ${outage.every((p) => p.live === 200 && unavailable(p))}; ${attempts.length} failed attempts` +
        ` (retry delays ${attempts.map((l) => l.retryInMs).join(', ')} ms);` +
        ` ready ${Math.round(recoverMs)} ms after the DB was up (DB start took ${Math.round(started - starting)} ms);` +
        ` answers while down: ${JSON.stringify(countBy(outage))}`,
    )
    expect(outage.length).toBeGreaterThan(20)
    expect(outage.every((p) => p.live === 200)).toBe(true)
    expect(outage.every(unavailable)).toBe(true)
    expect(loop.probes.filter((p) => p.live !== 200)).toEqual([])
    expect(recoverMs).toBeLessThan(PROBE_MS + SLACK_MS)
    const report = await getJson(`${service.base}/migrations`, AUTH)
    expect(report.body).toMatchObject({
      state: 'complete',
      applied: 23,
      pending: 0,
      lastError: null,
    })
    expect(await service.stop('SIGTERM')).toEqual({ code: 0, signal: null })
  })
})

describe('a database host that accepts connections and never answers', () => {
  it('readiness says database-unavailable throughout, also while a reconnect attempt waits to time out', async () => {
    // A black hole (a partition, a hung host): TCP connects, PostgreSQL never speaks.
    const sockets = new Set<Socket>()
    const hole = createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve))
    const port = (hole.address() as AddressInfo).port
    const url = `postgres://postgres:x@127.0.0.1:${port}/nowhere`
    const config = loadConfig({
      DATABASE_URL: url,
      ADMIN_TOKEN,
      LOG_LEVEL: 'silent',
      HEALTH_CHECK_INTERVAL_MS: String(PROBE_MS),
    })
    const app = await buildApp({ config, databaseUrl: url, adminToken: ADMIN_TOKEN, logger: false })
    await app.ready()
    try {
      const seen: Record<string, number> = {}
      const deadline = performance.now() + 7000
      // From the first failed health check on (before it, nothing is known yet).
      await until('the first health check', async () => !app.readiness.database().up, 5000, 10)
      while (performance.now() < deadline) {
        const reason = app.readiness.reason() ?? 'ready'
        seen[reason] = (seen[reason] ?? 0) + 1
        await sleep(10)
      }
      const { attempt, lastError } = app.migrations.supervisor.status()
      console.log(
        `black-holed database: ${attempt} attempts (last error: ${lastError?.message}); reasons read every 10 ms: ${JSON.stringify(seen)}`,
      )
      expect(attempt).toBeGreaterThanOrEqual(2)
      expect(Object.keys(seen)).toEqual(['database-unavailable'])
      expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200)
    } finally {
      await app.close()
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => hole.close(resolve))
    }
  })
})
