import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { SchemaSnapshot } from './catalog.js'
import { MigrationLoadError } from './errors.js'
import type { LoadedMigration, MigrationModule } from './types.js'

/** Written by the build next to the compiled chain: checksums of the TypeScript sources. */
export const CHECKSUM_MANIFEST = 'checksums.json'

const MODULE_FILE = /^(?!.*\.d\.ts$).+\.(?:js|mjs|ts)$/
const EXTENSION = /\.(?:js|mjs|ts)$/

/**
 * The chain's order: names compared by UTF-16 code unit, as `Array.prototype.sort`
 * does, the same on every machine. Not `localeCompare`: that follows the locale
 * (`010_alpha` before `010_Zeta`, the other way round in code units), and the first
 * call loads an ICU collator, ~2 MiB of memory for the life of the process.
 */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The built-in chain: `migrations/` beside the bundle (dist/server.js and its chunks
 * under dist/), one level up when this module sits in a folder of the build, or the
 * TypeScript sources in `migrations/` when run from `src/` through tsx.
 */
export function builtInMigrationsDir(): string {
  const built = ['./migrations/', '../migrations/']
    .map((candidate) => fileURLToPath(new URL(candidate, import.meta.url)))
    .find((dir) => existsSync(join(dir, CHECKSUM_MANIFEST)))
  return built ?? fileURLToPath(new URL('../../migrations/', import.meta.url))
}

/** sha256 of a migration's source text, line endings normalised, so it is the same on every build. */
export function sourceChecksum(source: string): string {
  return `sha256:${createHash('sha256').update(source.replace(/\r\n/g, '\n')).digest('hex')}`
}

/** The schema the chain produces, committed beside it; drift is measured against it. */
export const SCHEMA_SNAPSHOT = 'schema.snapshot.json'

export async function loadSchemaSnapshot(dir: string): Promise<SchemaSnapshot | null> {
  const path = join(resolve(dir), SCHEMA_SNAPSHOT)
  return existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as SchemaSnapshot) : null
}

/**
 * Lists the migrations of `dir` in name order, with their checksums, without
 * importing them: an up-to-date boot imports nothing, and a run imports only
 * what it applies (`load()`, memoised).
 */
export async function loadMigrations(dir: string): Promise<LoadedMigration[]> {
  const root = resolve(dir)
  const files = (await readdir(root))
    .filter((file) => MODULE_FILE.test(file))
    .map((file) => ({ file, name: file.replace(EXTENSION, '') }))
    .sort((a, b) => compareNames(a.name, b.name) || compareNames(a.file, b.file))
  const manifestPath = join(root, CHECKSUM_MANIFEST)
  const manifest: Record<string, string> = existsSync(manifestPath)
    ? JSON.parse(await readFile(manifestPath, 'utf8'))
    : {}
  // Files of one name (`005_x.js` beside `005_x.ts`): the name is listed once, but which
  // file would run is undefined, so none does: the migration carries a `problem`.
  const byName = new Map<string, string[]>()
  for (const { file, name } of files) byName.set(name, [...(byName.get(name) ?? []), file])
  const migrations: LoadedMigration[] = []
  for (const [name, twins] of byName) {
    const file = twins[0] as string
    const problem =
      twins.length > 1
        ? `exists twice in ${root} (${twins.join(', ')}): remove all but one`
        : undefined
    const path = join(root, file)
    // A file the manifest does not cover is read synchronously: a migration is a small
    // file, and 200 of them take ~2 ms this way against 12-17 ms as promises, 64 at a time
    // (each read is then four round trips to libuv's thread pool). The event loop waits
    // those few milliseconds once per run, before any migration is applied.
    const checksum = manifest[name] ?? sourceChecksum(readFileSync(path, 'utf8'))
    let module: Promise<MigrationModule> | undefined
    const load = () => {
      module ??= problem
        ? Promise.reject(new MigrationLoadError(name, problem))
        : importMigration(name, path)
      return module
    }
    migrations.push({ name, path, checksum, ...(problem && { problem }), load })
  }
  return migrations
}

const requireModule = createRequire(import.meta.url)

/**
 * Errors of `require()` that say only that this file must be imported instead (top-level
 * await, a runtime without require(esm)); thrown before the module ran. Nothing else falls
 * back: a CommonJS module that threw is dropped from require's cache, and `import()` would
 * run it a second time. A file that does not parse fails the same way either way.
 */
const IMPORT_INSTEAD = new Set([
  'ERR_REQUIRE_ASYNC_MODULE',
  'ERR_REQUIRE_ESM',
  'ERR_REQUIRE_CYCLE_MODULE',
  'ERR_UNKNOWN_FILE_EXTENSION',
])

/**
 * A compiled migration (`.js`, `.mjs`) is loaded with `require()`, which loads an ES
 * module synchronously (Node >= 20.19): on Node 20, 200 small modules take ~14 ms this
 * way against ~30 ms through `import()`'s asynchronous loader (~13 ms either way on
 * Node 22). TypeScript sources (tsx, tests) and what `require()` refuses to load go
 * through `import()`.
 */
function loadNamespace(path: string): Promise<unknown> | unknown {
  if (!path.endsWith('.ts')) {
    try {
      return requireModule(path)
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code
      if (!(typeof code === 'string' && IMPORT_INSTEAD.has(code))) throw err
    }
  }
  return import(pathToFileURL(path).href)
}

async function importMigration(name: string, path: string): Promise<MigrationModule> {
  let namespace: Partial<MigrationModule> & { default?: Partial<MigrationModule> }
  try {
    namespace = (await loadNamespace(path)) as typeof namespace
  } catch (err) {
    // A syntax error's own message names no file: say which migration it is.
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    throw new MigrationLoadError(name, `could not be loaded: ${reason}`, { cause: err })
  }
  // Named exports (umzug's convention), or an object as the default export (CommonJS style).
  const module = typeof namespace.up === 'function' ? namespace : namespace.default
  if (typeof module?.up !== 'function') {
    throw new MigrationLoadError(name, 'does not export an up() function')
  }
  return module as MigrationModule
}
