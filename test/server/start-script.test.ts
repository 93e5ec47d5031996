import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN } from '../helpers/app.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { type ServiceProcess, startService } from '../helpers/process.js'

const ROOT = join(import.meta.dirname, '..', '..')
const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<
  string,
  string
>

describe('npm start', () => {
  const databases: TestDatabase[] = []
  let service: ServiceProcess | undefined
  let serverPid: number | undefined
  afterAll(async () => {
    // The failure this test looks for leaves the server running without its shell.
    if (serverPid !== undefined) {
      try {
        process.kill(serverPid, 'SIGKILL')
      } catch {}
    }
    await service?.stop('SIGKILL')
    await Promise.all(databases.map((d) => d.drop()))
  })

  // npm runs a script as `sh -c <script>` and passes SIGTERM to that shell. Debian's sh
  // (dash) does not pass it on: without `exec`, the shell died and the server ran on,
  // orphaned, holding its port and its embedded PostgreSQL.
  it('stops the server itself when the shell npm started gets SIGTERM', async () => {
    const db = await createTestDatabase('empty')
    databases.push(db)
    service = await startService(
      { DATABASE_URL: db.url, ADMIN_TOKEN },
      { script: scripts.start as string },
    )
    await service.waitFor('/health/ready', (s) => s === 200)
    serverPid = service.logs.find((l) => typeof l.pid === 'number')?.pid as number
    expect(serverPid).toBe(service.child.pid)

    const exit = await service.stop('SIGTERM')
    expect(exit).toEqual({ code: 0, signal: null })
    expect(service.logs.some((l) => l.msg === 'stopped')).toBe(true)
  })
})
