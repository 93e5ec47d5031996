import { readFile, writeFile } from 'node:fs/promises'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { schemaSnapshot } from '../../src/migrate/catalog.js'
import { SCHEMA_SNAPSHOT } from '../../src/migrate/loader.js'
import { Migrator } from '../../src/migrate/migrator.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { withClient } from '../helpers/postgres.js'

const SNAPSHOT = new URL(`../../migrations/${SCHEMA_SNAPSHOT}`, import.meta.url)

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase('empty')
})
afterAll(() => db?.drop())

// Drift is measured against this file, so it must be what the chain produces today.
// After changing the chain: UPDATE_SNAPSHOT=1 npx vitest run test/migrate/snapshot.test.ts
it('the committed schema snapshot is what the chain produces on an empty database', async () => {
  await new Migrator({ connectionString: db.url }).up()
  const actual = await withClient(db.url, schemaSnapshot)
  if (process.env.UPDATE_SNAPSHOT === '1') {
    await writeFile(SNAPSHOT, `${JSON.stringify(actual, null, 2)}\n`)
  }
  const committed = JSON.parse(await readFile(SNAPSHOT, 'utf8'))
  expect(actual).toEqual(committed)
})
