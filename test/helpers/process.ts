import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { inject } from 'vitest'
import { freePort } from './postgres.js'

export interface ServiceProcess {
  child: ChildProcess
  port: number
  base: string
  /** Every log line so far, parsed from pino's JSON (non-JSON lines as `{ msg }`). */
  logs: Array<Record<string, unknown>>
  stderr(): string
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Polls GET path (with `headers`) until `accept(status, body)`; resolves with that body. */
  waitFor(
    path: string,
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are whatever JSON the route sends
    accept: (status: number, body: any) => boolean,
    timeoutMs?: number,
    headers?: Record<string, string>,
    // biome-ignore lint/suspicious/noExplicitAny: see above
  ): Promise<any>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts `node <this run's build>/server.js` as a real process on a free port; with
 * `script`, through `sh -c <script>` as npm runs a package script (`dist/server.js` in it
 * replaced by this run's build).
 */
export async function startService(
  env: Record<string, string>,
  opts: { script?: string } = {},
): Promise<ServiceProcess> {
  const port = await freePort()
  const server = join(inject('buildDir'), 'server.js')
  const [command, args] =
    opts.script === undefined
      ? [process.execPath, [server]]
      : ['sh', ['-c', opts.script.replaceAll('dist/server.js', server)]]
  const child = spawn(command, args, {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      HEALTH_CHECK_INTERVAL_MS: '250',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Array<Record<string, unknown>> = []
  let err = ''
  let buffer = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    let nl = buffer.indexOf('\n')
    while (nl >= 0) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      try {
        logs.push(JSON.parse(line))
      } catch {
        logs.push({ msg: line })
      }
      nl = buffer.indexOf('\n')
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const base = `http://127.0.0.1:${port}`
  const service: ServiceProcess = {
    child,
    port,
    base,
    logs,
    stderr: () => err,
    exited,
    async waitFor(path, accept, timeoutMs = 30_000, headers = {}) {
      const deadline = Date.now() + timeoutMs
      let last = 'no answer'
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`service exited (${child.exitCode}): ${err}`)
        try {
          const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(2000) })
          const body = await res.json().catch(() => null)
          last = `${res.status} ${JSON.stringify(body)}`
          if (accept(res.status, body)) return body
        } catch (e) {
          last = String(e)
        }
        await new Promise((r) => setTimeout(r, 50))
      }
      throw new Error(`timed out waiting for ${path}; last answer: ${last}`)
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
  return service
}
