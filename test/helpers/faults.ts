import { copyFile, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inject } from 'vitest'
import { withClient } from './postgres.js'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface JsonAnswer {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are whatever JSON the route sends
  body: any
  ms: number
}

/** GET `url` and parse the JSON body; `ms` is the round trip. */
export async function getJson(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<JsonAnswer> {
  const started = performance.now()
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) })
  const body = await res.json().catch(() => null)
  return { status: res.status, body, ms: performance.now() - started }
}

/**
 * A MIGRATIONS_DIR holding this run's compiled built-in chain (001-023 with its
 * checksum manifest, so ledger rows written by the built-in chain match) plus
 * `extra` migrations, each body becoming `export async function up({ context })`.
 * The schema snapshot is left out: drift then reads `unknown` instead of
 * flagging the extra migrations' objects.
 */
export async function builtInChainPlus(extra: Record<string, string>): Promise<string> {
  const source = join(inject('buildDir'), 'migrations')
  const dir = await mkdtemp(join(tmpdir(), 'chain-plus-'))
  for (const file of await readdir(source)) {
    if (file.endsWith('.js') || file === 'checksums.json') {
      await copyFile(join(source, file), join(dir, file))
    }
  }
  for (const [name, body] of Object.entries(extra)) {
    await writeFile(
      join(dir, `${name}.mjs`),
      `export async function up({ context }) {\n${body}\n}\n`,
    )
  }
  return dir
}

/** A small seeded PRNG (mulberry32): the same seed gives the same kill instants. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The service's own sessions on database `name` (application_name basketball-api…), from another connection. */
export async function serviceSessions(
  serverUrl: string,
  name: string,
): Promise<Array<{ pid: number; application: string; state: string | null }>> {
  return withClient(serverUrl, async (c) => {
    const { rows } = await c.query<{ pid: number; application: string; state: string | null }>(
      `SELECT pid, application_name AS application, state FROM pg_stat_activity
        WHERE datname = $1 AND application_name LIKE 'basketball-api%'`,
      [name],
    )
    return rows
  })
}

/** Advisory locks held on database `name`. */
export async function advisoryLocks(serverUrl: string, name: string): Promise<number> {
  return withClient(serverUrl, async (c) => {
    const { rows } = await c.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_locks
        WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = $1)`,
      [name],
    )
    return Number(rows[0]?.n ?? 0)
  })
}

/** Polls `fn` every `everyMs` until it returns a truthy value; throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T>,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await fn()
      if (value) return value as NonNullable<T>
      last = value
    } catch (err) {
      last = err
    }
    await sleep(everyMs)
  }
  throw new Error(`timed out waiting for ${what}; last: ${String(last)}`)
}
