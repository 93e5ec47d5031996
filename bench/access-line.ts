// The access line's own cost, alone: per iteration, the child logger Fastify makes for
// a request and the one line the service writes when it completes (src/app.ts), with
// the service's logger and serializers (src/logger.ts), to /dev/null. The bench's
// roster rows give what the line costs inside the loaded service; this gives the floor.
// usage: node --import tsx bench/access-line.ts [iterations]
import Fastify from 'fastify'
import pino from 'pino'
import { createLogger } from '../src/logger.js'

const iterations = Number(process.argv[2] ?? 200_000)
// Fastify's own logger over the service's (a child with Fastify's `res` serializer added),
// as src/app.ts gets it; each request's logger is a child of that one.
const app = Fastify({
  loggerInstance: createLogger('info', pino.destination({ dest: '/dev/null', sync: true })),
})
const logger = app.log
// What the `req` serializer reads of a Fastify request, and the `res` one of a reply.
const request = {
  method: 'GET',
  url: '/teams/100/roster',
  headers: {},
  host: '127.0.0.1:3000',
  ip: '127.0.0.1',
  socket: { remotePort: 51_234 },
}
const reply = { statusCode: 200 }

const perLine: number[] = []
for (let round = 0; round < 5; round++) {
  const started = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) {
    const child = logger.child({ reqId: `req-${i.toString(36)}` })
    child.info({ req: request, res: reply, responseTime: 1.234 }, 'request completed')
  }
  perLine.push(Number(process.hrtime.bigint() - started) / 1000 / iterations)
}
perLine.sort((a, b) => a - b)
process.stdout.write(
  `access line (child logger + one line to /dev/null), ${iterations} per round, 5 rounds: ` +
    `median ${perLine[2]?.toFixed(2)} µs, range ${perLine[0]?.toFixed(2)}–${perLine[4]?.toFixed(2)} µs\n`,
)
