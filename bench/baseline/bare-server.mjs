// The bare baseline: Fastify and pg from this node_modules, no plugins, no logger.
// Connects, runs one query, listens; `/health/ready` answers {"status":"pass"} and
// `/teams/:id/roster` runs the roster SQL (BENCH_ROSTER_SQL) on a pg.Pool.
// Run with plain node, like the service's dist/server.js.
import Fastify from 'fastify'
import pg from 'pg'

const { DATABASE_URL, PORT = '0', HOST = '127.0.0.1', BENCH_ROSTER_SQL } = process.env
if (!DATABASE_URL || !BENCH_ROSTER_SQL) {
  process.stderr.write('bare-server: DATABASE_URL and BENCH_ROSTER_SQL are required\n')
  process.exit(1)
}

const pool = new pg.Pool({
  connectionString: DATABASE_URL,
  max: 10,
  application_name: 'bench-bare',
})
pool.on('error', () => {})
await pool.query('SELECT 1')

const app = Fastify({ logger: false })
app.get('/health/ready', async () => ({ status: 'pass' }))
app.get('/teams/:id/roster', async (request) => {
  const { rows } = await pool.query(BENCH_ROSTER_SQL, [Number(request.params.id)])
  return rows
})

const stop = async () => {
  await app.close()
  await pool.end()
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

await app.listen({ port: Number(PORT), host: HOST })
