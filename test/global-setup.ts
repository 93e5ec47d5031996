import { execFileSync } from 'node:child_process'
import type { TestProject } from 'vitest/node'
import {
  databaseUrl,
  loadIncidentFixture,
  startTestPostgres,
  TEMPLATES,
  withClient,
} from './helpers/postgres.js'

/**
 * Builds dist/ (process tests run the real artifact), starts one PostgreSQL for
 * the run and prepares the template databases every test copies from.
 */
export default async function setup(project: TestProject) {
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' })
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
  return async () => {
    await server.stop()
  }
}
