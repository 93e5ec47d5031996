// Times the migration engine in-process: `new Migrator({ connectionString, migrationsDir }).up()`.
// Run by plain node (no tsx loader hooks) against the benchmark's build of the engine.
// usage: node bench/lib/time-migrator.mjs <buildDir> <databaseUrl> <migrationsDir>
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'

const [buildDir, connectionString, migrationsDir] = process.argv.slice(2)
if (!buildDir || !connectionString || !migrationsDir) {
  process.stderr.write('usage: time-migrator.mjs <buildDir> <databaseUrl> <migrationsDir>\n')
  process.exit(2)
}
const t0 = performance.now()
const { Migrator } = await import(pathToFileURL(join(buildDir, 'migrate/migrator.js')).href)
const t1 = performance.now()
const migrator = new Migrator({ connectionString, migrationsDir })
const applied = await migrator.up()
const t2 = performance.now()
process.stdout.write(
  `${JSON.stringify({ engineImportMs: t1 - t0, upMs: t2 - t1, applied: applied.length })}\n`,
)
