import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Writes a throwaway migration chain (MIGRATIONS_DIR) from `{ name: body }`:
 * each body becomes `export async function up({ context }) { … }` in `<name>.mjs`.
 */
export async function writeChain(migrations: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'chain-'))
  for (const [name, body] of Object.entries(migrations)) {
    await writeFile(
      join(dir, `${name}.mjs`),
      `export async function up({ context }) {\n${body}\n}\n`,
    )
  }
  return dir
}
