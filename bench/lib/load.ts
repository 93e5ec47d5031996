import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { quantile } from './stats.js'

export interface LoadResult {
  /** 2xx responses per second over the measured window. */
  rps: number
  requests: number
  non2xx: number
  errors: number
  /** Latency from autocannon's per-response timer (hrtime, sub-millisecond), 2xx only. */
  p50Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
  durationS: number
}

export interface LoadOptions {
  url: string
  seconds: number
  connections: number
  headers?: Record<string, string>
  /** A fixed number of requests instead of `seconds` of load. */
  amount?: number
}

/**
 * Closed-loop HTTP load with autocannon (keep-alive connections, no pipelining).
 * autocannon's own histogram has 1 ms resolution, so latency is taken from its
 * `response` event, which carries the hrtime duration of every request.
 */
export async function load(opts: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16)
  let n = 0
  const started = performance.now()
  let finish: (err: Error | null, result: autocannon.Result) => void = () => {}
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (err, result) => (err ? reject(err) : resolve(result))
  })
  const instance = autocannon(
    {
      url: opts.url,
      connections: opts.connections,
      pipelining: 1,
      duration: opts.seconds,
      ...(opts.amount !== undefined && { amount: opts.amount }),
      headers: opts.headers ?? {},
      timeout: 10,
    },
    (err, result) => finish(err, result),
  )
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status < 200 || status > 299) return
    if (n === latencies.length) {
      const grown = new Float64Array(latencies.length * 2)
      grown.set(latencies)
      latencies = grown
    }
    latencies[n++] = ms
  })
  const result = await done
  const durationS = Math.max(result.duration, (performance.now() - started) / 1000)
  const sample = latencies.subarray(0, n)
  return {
    rps: result['2xx'] / result.duration,
    requests: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    p50Ms: quantile(sample, 0.5),
    p99Ms: quantile(sample, 0.99),
    p999Ms: quantile(sample, 0.999),
    maxMs: quantile(sample, 1),
    durationS,
  }
}
