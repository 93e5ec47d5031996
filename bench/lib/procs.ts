import { type ChildProcess, spawn } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { freePort } from '../../test/helpers/postgres.js'
import { sleep } from './stats.js'

/** A node process the benchmark started (the service or the bare baseline). */
export interface BenchProcess {
  name: string
  child: ChildProcess
  pid: number
  port: number
  base: string
  /** performance.now() taken just before spawn(). */
  spawnedAt: number
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stop(): Promise<void>
}

/** Every child still running, so a failure or Ctrl-C can end them (by pid, nothing broader). */
const live = new Set<ChildProcess>()

export function killAllChildren(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  live.clear()
}

export function track(child: ChildProcess): ChildProcess {
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

const usedPorts = new Set<number>()

/** A free loopback port not handed out earlier in this run. */
export async function uniquePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort()
    if (port > 0 && !usedPorts.has(port)) {
      usedPorts.add(port)
      return port
    }
  }
  throw new Error('no free port found')
}

export interface SpawnOptions {
  name: string
  /** Arguments after `node` (the script and its flags). */
  args: string[]
  env: Record<string, string>
  port: number
  /** Where stdout goes: discarded (the service logs every request at info), or kept. */
  keepStdout?: boolean
  /** A command that runs node (`valgrind --tool=callgrind …`): its argv, node's path follows. */
  wrapper?: string[]
}

/** The wrapper's arguments, then node's path: what follows the wrapper's command. */
function wrapped(wrapper: string[] | undefined): string[] {
  return wrapper ? [...wrapper.slice(1), process.execPath] : []
}

export function spawnNode(opts: SpawnOptions): BenchProcess & { stdout(): string } {
  let err = ''
  let out = ''
  const spawnedAt = performance.now()
  const child = track(
    spawn(opts.wrapper?.[0] ?? process.execPath, [...wrapped(opts.wrapper), ...opts.args], {
      env: { PATH: process.env.PATH ?? '', ...opts.env },
      stdio: ['ignore', opts.keepStdout ? 'pipe' : 'ignore', 'pipe'],
    }),
  )
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    if (err.length < 64_000) err += chunk
  })
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    if (out.length < 1_000_000) out += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const proc = {
    name: opts.name,
    child,
    pid: child.pid ?? 0,
    port: opts.port,
    base: `http://127.0.0.1:${opts.port}`,
    spawnedAt,
    stderr: () => err,
    stdout: () => out,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const done = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)])
      if (!done) {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
  return proc
}

/** One GET on a fresh connection; resolves with the status, or 0 when nothing answered. */
export function probe(url: string, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

/**
 * Polls `path` every `everyMs` until it answers 200; resolves with milliseconds
 * from spawn to that answer. Bounded by `timeoutMs`; fails at once if the process exits.
 */
export async function timeToFirst200(
  proc: BenchProcess,
  path: string,
  { timeoutMs = 60_000, everyMs = 5 } = {},
): Promise<number> {
  const deadline = proc.spawnedAt + timeoutMs
  let last = 0
  while (performance.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode}) before ready: ${proc.stderr()}`)
    }
    last = await probe(`${proc.base}${path}`)
    if (last === 200) return performance.now() - proc.spawnedAt
    await sleep(everyMs)
  }
  throw new Error(`${proc.name}: no 200 on ${path} within ${timeoutMs} ms (last status ${last})`)
}

/** Resident set size of a process in MiB, from /proc/<pid>/status (VmRSS). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1]) / 1024
}

/**
 * CPU time (user + system) the process has used so far, in ms, from /proc/<pid>/stat
 * (utime and stime in clock ticks; USER_HZ is 100 on Linux, so 10 ms resolution).
 * Less sensitive than wall time to other work on the machine.
 */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await procStat(pid)
  if (stat === null) throw new Error(`no process ${pid}`)
  return stat.cpuMs
}

/**
 * Of a process's CPU so far, the kernel's part (stime, ms), and the context switches of
 * its main thread (the event loop: /proc/<pid>/status, voluntary and not), which count
 * its wake-ups. Instruction counts (callgrind) see neither.
 */
export async function kernelShare(pid: number): Promise<{ sysMs: number; switches: number }> {
  const stat = await procStat(pid)
  if (stat === null) throw new Error(`no process ${pid}`)
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const count = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
  return {
    sysMs: stat.sysMs,
    switches: count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches'),
  }
}

/** utime + stime (ms), stime alone, and the parent pid, from /proc/<pid>/stat; null once gone. */
async function procStat(
  pid: number,
): Promise<{ cpuMs: number; sysMs: number; ppid: number } | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null)
  if (stat === null) return null
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {
    cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
    sysMs: Number(fields[12]) * 10,
    ppid: Number(fields[1]),
  }
}

/**
 * CPU time (ms) of a local PostgreSQL server so far: its postmaster and every process it
 * started (backends, walwriter, checkpointer...), found in /proc by parent pid. Only the
 * processes alive now count, so take it over a window in which the backends stay (a
 * pool's connections under a load do).
 */
export async function serverCpuMs(postmasterPid: number): Promise<number> {
  let total = 0
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    const stat = await procStat(pid)
    if (stat && (pid === postmasterPid || stat.ppid === postmasterPid)) total += stat.cpuMs
  }
  return total
}

/**
 * The postmaster of a backend running on this machine, or null (a remote or container
 * server, whose pid may name some other local process: both must be `postgres`).
 */
export async function postmasterOf(backendPid: number): Promise<number | null> {
  const comm = (pid: number) =>
    readFile(`/proc/${pid}/comm`, 'utf8').then(
      (c) => c.trim(),
      () => null,
    )
  const stat = await procStat(backendPid)
  if (!stat || (await comm(backendPid)) !== 'postgres') return null
  return (await comm(stat.ppid)) === 'postgres' ? stat.ppid : null
}

/** The machine's busy and total CPU time so far, in ms summed over cores (/proc/stat). */
export async function machineCpuMs(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0] ?? ''
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((a, b) => a + b, 0)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  return { busy: (total - idle) * 10, total: total * 10 }
}

/** Runs a command to completion; resolves with its wall time in ms. Killed after `timeoutMs`. */
export function runCommand(
  command: string,
  args: string[],
  { env = process.env, timeoutMs = 120_000 }: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ ms: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    let stdout = ''
    let stderr = ''
    const child = track(spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
    })
    child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      stderr += c
    })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const ms = performance.now() - started
      if (code === 0) resolve({ ms, stdout, stderr })
      else reject(new Error(`${command} exited ${code ?? signal}: ${stderr.slice(0, 2000)}`))
    })
  })
}
