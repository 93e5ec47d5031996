import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { runCommand } from './procs.js'

export interface Build {
  dir: string
  /** `private`: compiled from src/ for this run; `dist`: the checkout's dist/ as it is; `given`: --build-dir. */
  kind: 'private' | 'dist' | 'given'
  ms: number
  remove(): Promise<void>
}

/**
 * Builds the service the way `npm run build` does, into a folder of this run's own
 * under bench/results/ (gitignored, inside the checkout so node_modules resolves):
 * other engineers rebuild dist/ while the benchmark runs, and a process must not be
 * measured while its files are being rewritten. `--use-dist` takes dist/ as it is;
 * `--build-dir` any build folder inside the checkout (to A/B a candidate fix).
 */
export async function buildService(
  root: string,
  useDist: boolean,
  given: string | null = null,
): Promise<Build> {
  if (useDist || given) {
    const dir = given ? resolve(given) : join(root, 'dist')
    if (!existsSync(join(dir, 'server.js')) || !existsSync(join(dir, 'migrations'))) {
      throw new Error(`${dir} has no server.js and migrations/: build it first`)
    }
    if (!dir.startsWith(`${root}/`)) {
      throw new Error(`${dir} must be inside ${root}, so that its imports find node_modules`)
    }
    return { dir, kind: given ? 'given' : 'dist', ms: 0, remove: async () => {} }
  }
  const dir = join(root, 'bench', 'results', `build-${process.pid}`)
  const remove = () => rm(dir, { recursive: true, force: true })
  try {
    const built = await runCommand(process.execPath, [join(root, 'scripts', 'build.mjs'), dir], {
      timeoutMs: 300_000,
    })
    return { dir, kind: 'private', ms: built.ms, remove }
  } catch (err) {
    await remove()
    throw err
  }
}
