import { type App, type AppOptions, buildApp } from '../../src/app.js'
import { type Config, loadConfig } from '../../src/config.js'
import { createTestDatabase, type TestDatabase } from './database.js'

export const ADMIN_TOKEN = 'test-admin-token-0123456789'
export const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` }

export interface TestApp {
  app: App
  db: TestDatabase
  /** Closes the app, then drops its database. */
  close(): Promise<void>
}

/**
 * Builds the app on a database of its own (a copy of the empty or the incident
 * template), lets it migrate, and waits until it is ready. Use `inject`.
 */
export async function buildTestApp(
  options: {
    template?: 'empty' | 'incident'
    env?: Record<string, string>
    /** Wait for readiness (default true). */
    waitReady?: boolean
    /** A logger for the app (default none). */
    logger?: AppOptions['logger']
    inspectEveryMs?: number
  } = {},
): Promise<TestApp> {
  const db = await createTestDatabase(options.template ?? 'incident')
  const config: Config = loadConfig({
    DATABASE_URL: db.url,
    ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    HEALTH_CHECK_INTERVAL_MS: '200',
    ...options.env,
  })
  const app = await buildApp({
    config,
    databaseUrl: db.url,
    adminToken: ADMIN_TOKEN,
    logger: options.logger ?? false,
    inspectEveryMs: options.inspectEveryMs,
  })
  await app.ready()
  if (options.waitReady !== false) {
    await app.migrations.supervisor.settled()
    if (app.readiness.reason() !== null) {
      throw new Error(`app not ready: ${app.readiness.reason()}`)
    }
  }
  return {
    app,
    db,
    close: async () => {
      await app.close()
      await db.drop()
    },
  }
}

/**
 * Reads the app's readiness every 5 ms until the returned function is called, which
 * resolves to every distinct answer seen (`[null]`: ready all along).
 */
export function watchReadiness(app: App): () => Promise<Array<string | null>> {
  const reasons = new Set<string | null>()
  let watching = true
  const done = (async () => {
    while (watching) {
      reasons.add(app.readiness.reason())
      await new Promise((r) => setTimeout(r, 5))
    }
  })()
  return async () => {
    watching = false
    await done
    return [...reasons]
  }
}
