// Bytes allocated per roster read, by allocation site: the service (buildApp from src/,
// as shipped: LOG_LEVEL info, the access line to /dev/null) against the bare Fastify +
// pg handler running the same SQL, in this one process, one after the other, through
// Fastify's inject (so the HTTP layer is light-my-request's, the same on both sides).
// V8's sampling heap profiler, keeping what the young and old collections freed: it
// counts garbage too, which is what a request's allocations mostly are.
// usage: node --import tsx bench/allocations.ts [--requests N] [--top N]
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import Fastify from 'fastify'
import pg from 'pg'
import pino from 'pino'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { createLogger } from '../src/logger.js'
import { Roster } from '../src/schemas/roster.js'
import { startTestPostgres } from '../test/helpers/postgres.js'
import { Admin, seedRosters } from './lib/db.js'
import { findRosterSql } from './lib/roster.js'

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    top: { type: 'string', default: '12' },
  },
})
const REQUESTS = Number(values.requests)
const TOP = Number(values.top)
const TOKEN = 'bench-allocations-token-0123456789'
const CONNECTIONS = 10

interface Injectable {
  inject(opts: { url: string; headers: Record<string, string> }): Promise<{ statusCode: number }>
  close(): Promise<unknown>
}
interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize: number
  children: ProfileNode[]
}

/** Where allocating code comes from: a package, node itself, src/, or code generated at run time. */
function origin(url: string): string {
  if (url === '') return 'generated (validators, serializers)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg?.[1]) return pkg[1]
  if (url.startsWith('node:')) return 'node'
  if (url.includes('/src/')) return 'src/'
  return url.replace(/^.*\//, '')
}

/** `CONNECTIONS` callers in a loop, as autocannon's connections, `total` requests in all. */
async function load(app: Injectable, total: number) {
  const headers = { authorization: `Bearer ${TOKEN}` }
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      for (let i = 0; i < total / CONNECTIONS; i++) {
        const res = await app.inject({ url: '/teams/100/roster', headers })
        if (res.statusCode !== 200) throw new Error(`roster answered ${res.statusCode}`)
      }
    }),
  )
}

async function measure(name: string, app: Injectable) {
  await load(app, 3000) // warm-up: compiled code, pooled connections
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.enable')
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 256,
    includeObjectsCollectedByMinorGC: true,
    includeObjectsCollectedByMajorGC: true,
  })
  await load(app, REQUESTS)
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
    profile: { head: ProfileNode }
  }
  session.disconnect()
  const sites = new Map<string, number>()
  const origins = new Map<string, number>()
  let total = 0
  const walk = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame
    if (node.selfSize > 0) {
      total += node.selfSize
      const file = url.replace(/^.*node_modules\//, '').replace(/^.*\/(src|bench)\//, '$1/')
      const site = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`
      sites.set(site, (sites.get(site) ?? 0) + node.selfSize)
      origins.set(origin(url), (origins.get(origin(url)) ?? 0) + node.selfSize)
    }
    for (const child of node.children) walk(child)
  }
  walk(profile.head)
  const perRequest = (bytes: number) => `${Math.round(bytes / REQUESTS)}`.padStart(6)
  const lines = [`${name}: ${(total / REQUESTS / 1024).toFixed(1)} KB per request (sampled)`]
  lines.push('  by origin (bytes per request):')
  for (const [o, b] of [...origins].sort((x, y) => y[1] - x[1])) {
    if (b / REQUESTS >= 50) lines.push(`  ${perRequest(b)}  ${o}`)
  }
  lines.push(`  top ${TOP} sites:`)
  for (const [s, b] of [...sites].sort((x, y) => y[1] - x[1]).slice(0, TOP)) {
    lines.push(`  ${perRequest(b)}  ${s}`)
  }
  process.stdout.write(`${lines.join('\n')}\n\n`)
  return total / REQUESTS
}

/**
 * CPU of the two serializers alone on one roster's rows (as read): the service's route
 * serializer (fast-json-stringify from the response schema) against `JSON.stringify`.
 */
async function serializerCpu(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const { rows } = await client.query(sql, [100])
  await client.end()
  // As Fastify builds a route's serializer (src/lib/validators.ts wraps the same factory).
  const schema = SerializerSelector()(undefined, {})({
    schema: Roster,
    method: 'GET',
    url: '/teams/:id/roster',
    httpStatus: '200',
  } as never) as (data: unknown) => string
  const time = (fn: () => string) => {
    let length = 0
    const rounds: number[] = []
    for (let r = 0; r < 5; r++) {
      const started = process.hrtime.bigint()
      for (let i = 0; i < 100_000; i++) length += fn().length
      rounds.push(Number(process.hrtime.bigint() - started) / 1000 / 100_000)
    }
    if (length === 0) throw new Error('nothing serialized')
    return rounds.sort((a, b) => a - b)[2] ?? Number.NaN
  }
  const fjs = time(() => schema({ items: rows }))
  const native = time(() => JSON.stringify(rows))
  process.stdout.write(
    `serializer CPU for ${rows.length} rows (median of 5 × 100,000): fast-json-stringify ` +
      `${fjs.toFixed(2)} µs, JSON.stringify ${native.toFixed(2)} µs\n`,
  )
}

const server = await startTestPostgres()
const admin = await Admin.connect(server.url)
try {
  const url = await admin.createDatabase('bench_allocations')
  const config = loadConfig({ DATABASE_URL: url, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'info' })
  const service = await buildApp({
    config,
    databaseUrl: url,
    adminToken: TOKEN,
    logger: createLogger('info', pino.destination({ dest: '/dev/null', sync: true })),
  })
  await service.ready()
  await service.migrations.supervisor.settled() // the chain, applied by the service's own boot
  await seedRosters(url)
  const { sql } = await findRosterSql(join(import.meta.dirname, '..'))
  process.stdout.write(
    `${REQUESTS} roster reads each, ${CONNECTIONS} at a time, PostgreSQL ${server.version} (${server.source}), node ${process.version}\n\n`,
  )
  const serviceBytes = await measure('service', service as unknown as Injectable)
  await service.close()

  const pool = new pg.Pool({ connectionString: url, max: 10 })
  pool.on('error', () => {})
  const bare = Fastify({ logger: false })
  bare.get<{ Params: { id: string } }>('/teams/:id/roster', async (request) => {
    const { rows } = await pool.query(sql, [Number(request.params.id)])
    return rows
  })
  await bare.ready()
  const bareBytes = await measure('bare', bare as unknown as Injectable)
  await bare.close()
  await pool.end()
  process.stdout.write(`service/bare: ${(serviceBytes / bareBytes).toFixed(2)}×\n`)
  await serializerCpu(url, sql)
  await admin.dropDatabase('bench_allocations')
} finally {
  await admin.end()
  await server.stop()
}
