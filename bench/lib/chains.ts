import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CREATE_LEDGER } from '../../src/migrate/ledger.js'

/** The ledger DDL the engine runs before a chain, for the psql baseline. */
export const LEDGER_DDL = CREATE_LEDGER

const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`

export const migrationName = (i: number) => `m${String(i).padStart(4, '0')}_bench_t${i}`
export const trivialStatement = (i: number) => `CREATE TABLE IF NOT EXISTS bench_t${i} (id int)`

/**
 * Writes `count` trivial migration modules (`CREATE TABLE IF NOT EXISTS bench_t<i>`)
 * to `dir`, with the checksums.json manifest a build writes beside the built-in chain.
 */
export async function writeTrivialChain(dir: string, count: number): Promise<void> {
  await mkdir(dir, { recursive: true })
  const manifest: Record<string, string> = {}
  for (let i = 1; i <= count; i++) {
    const name = migrationName(i)
    const source = `export async function up({ context }) {\n  await context.query('${trivialStatement(i)}')\n}\n`
    manifest[name] = sha256(source)
    await writeFile(join(dir, `${name}.mjs`), source)
  }
  await writeFile(join(dir, 'checksums.json'), `${JSON.stringify(manifest, null, 2)}\n`)
}

/**
 * The same chain as one psql script: the ledger table, then per migration
 * `BEGIN; <statement>; INSERT INTO schema_migrations ...; COMMIT;`.
 */
export async function writePsqlScript(file: string, count: number): Promise<void> {
  const lines = [`${LEDGER_DDL};`]
  for (let i = 1; i <= count; i++) {
    const name = migrationName(i)
    lines.push(
      'BEGIN;',
      `${trivialStatement(i)};`,
      `INSERT INTO schema_migrations (name, checksum, outcome, duration_ms, changes, applied_by) VALUES ('${name}', '${sha256(name)}', 'ran', 0, '[]', 'psql');`,
      'COMMIT;',
    )
  }
  await writeFile(file, `${lines.join('\n')}\n`)
}
