import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN } from '../helpers/app.js'
import { createTestDatabase, type TestDatabase } from '../helpers/database.js'
import { type ServiceProcess, startService } from '../helpers/process.js'

const REPORT = fileURLToPath(new URL('../fixtures/builtins/report-modules.mjs', import.meta.url))
const UNDICI = 'NativeModule internal/deps/undici/undici'

const services: ServiceProcess[] = []
const databases: TestDatabase[] = []
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop('SIGKILL')))
  await Promise.all(databases.splice(0).map((d) => d.drop()))
})

async function loadedModules(service: ServiceProcess): Promise<string[]> {
  const before = service.stderr().length
  service.child.kill('SIGUSR2')
  for (let i = 0; i < 100; i++) {
    const line = service.stderr().slice(before).split('\n')[0] ?? ''
    if (line.endsWith('}')) return (JSON.parse(line) as { modules: string[] }).modules
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`no module list on stderr: ${service.stderr()}`)
}

describe('the built service, once ready', () => {
  it('has not loaded undici, on Node 20 as on 22 (pg alone loads it on Node 20)', async () => {
    // Two ways in, both shut in the build: an ES import of node:http builds its facade
    // and loads undici on Node 22 (src/plugins/errors.ts requires it instead); pg probes
    // for Cloudflare Workers with `new Response()` where `navigator` is missing (Node 20),
    // which scripts/build.mjs takes out of the bundle. pg alone shows what is at stake.
    const pgAlone = execFileSync(
      process.execPath,
      [
        '-e',
        `require('pg'); process.stdout.write(String(process.moduleLoadList.includes('${UNDICI}')))`,
      ],
      { encoding: 'utf8' },
    )
    expect(pgAlone).toBe(String(Number(process.versions.node.split('.')[0]) < 21))
    const db = await createTestDatabase('empty')
    databases.push(db)
    const service = await startService({
      DATABASE_URL: db.url,
      ADMIN_TOKEN,
      NODE_OPTIONS: `--import ${REPORT}`,
    })
    services.push(service)
    await service.waitFor('/health/ready', (status) => status === 200)
    const modules = await loadedModules(service)
    expect(modules.length).toBeGreaterThan(100)
    expect(modules.filter((m) => m.includes('undici'))).toEqual([])
  })
})
