import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')

describe('the test run', () => {
  it('exits 1 when a test fails, with the suite’s global setup and its PostgreSQL', async () => {
    // Not the outer run's server: the global setup drops and recreates the template
    // databases, which the outer run's other files are copying from (with more than one
    // worker, 'template database "tpl_empty" does not exist'). The inner run starts its own.
    const { TEST_DATABASE_URL: _shared, ...env } = process.env
    const child = spawn(
      process.execPath,
      [
        join(root, 'node_modules', 'vitest', 'vitest.mjs'),
        'run',
        '--config',
        join(root, 'test', 'fixtures', 'exit-code', 'vitest.config.ts'),
      ],
      { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      output += d
    })
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    expect(output).toContain('fails on purpose')
    expect(output).toMatch(/1 failed/)
    expect(code, output).toBe(1)
  }, 120_000)
})
