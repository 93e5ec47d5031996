import { randomBytes } from 'node:crypto'
import { inject } from 'vitest'
import { databaseUrl, TEMPLATES, withClient } from './postgres.js'

export { TEMPLATES }

export interface TestDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

/** A database of its own for one test, copied from a template; drop it when done. */
export async function createTestDatabase(
  template: keyof typeof TEMPLATES = 'empty',
): Promise<TestDatabase> {
  const server = inject('pgServerUrl')
  const name = `t_${template}_${randomBytes(6).toString('hex')}`
  await withClient(server, (c) =>
    c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATES[template]}`),
  )
  return {
    name,
    url: databaseUrl(server, name),
    drop: () =>
      withClient(server, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(
        () => undefined,
      ),
  }
}
