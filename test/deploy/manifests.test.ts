import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import module from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { ConfigSchema, loadConfig } from '../../src/config.js'
import { buildTestApp, type TestApp } from '../helpers/app.js'

/**
 * The deployment files are checked against the service itself (its env schema,
 * its routes, its shutdown timing, its build output), so they cannot drift.
 */

const ROOT = join(import.meta.dirname, '..', '..')
const K8S = join(ROOT, 'deploy', 'kubernetes')

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML; the tests are the type.
type Doc = Record<string, any>

function load(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))
  for (const doc of docs) expect(doc.errors, file).toEqual([])
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null)
}
function one(file: string, kind: string): Doc {
  const docs = load(file).filter((d) => d.kind === kind)
  expect(docs, `${file} holds one ${kind}`).toHaveLength(1)
  return docs[0] as Doc
}

const deployment = one('deployment.yaml', 'Deployment')
const service = one('service.yaml', 'Service')
const pdb = one('pdb.yaml', 'PodDisruptionBudget')
const secret = one('secret.example.yaml', 'Secret')
const job = one('migrate-job.yaml', 'Job')
const kustomization = one('kustomization.yaml', 'Kustomization')

const pod = deployment.spec.template
const container = pod.spec.containers.find((c: Doc) => c.name === 'api') as Doc
const httpPort = container.ports.find((p: Doc) => p.name === 'http') as Doc
const envOf = (c: Doc): Doc[] => c.env ?? []
const literalEnv = (c: Doc) =>
  Object.fromEntries(
    envOf(c)
      .filter((e) => e.value !== undefined)
      .map((e) => [e.name as string, String(e.value)]),
  )
const probes = () =>
  (['startupProbe', 'livenessProbe', 'readinessProbe'] as const)
    .filter((p) => container[p])
    .map((p) => [p, container[p] as Doc] as const)
const isSubset = (small: Record<string, string>, big: Record<string, string>) =>
  Object.entries(small).every(([k, v]) => big[k] === v)

/** The Dockerfile's instructions (continuations joined, comments dropped), by stage. */
function dockerfile() {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ')
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const args: Record<string, string> = {}
  const stages: Array<{ from: string; lines: string[] }> = []
  for (const line of lines) {
    const [word = '', ...rest] = line.split(/\s+/)
    const value = rest.join(' ')
    if (word.toUpperCase() === 'ARG' && stages.length === 0) {
      const [name = '', def = ''] = value.split('=')
      args[name] = def
    } else if (word.toUpperCase() === 'FROM') {
      const image = (value.split(/\s+/)[0] ?? '').replace(/\$\{(\w+)\}/g, (_, n) => args[n] ?? '')
      stages.push({ from: image, lines: [] })
    } else stages.at(-1)?.lines.push(line)
  }
  const final = stages.at(-1)
  if (!final) throw new Error('Dockerfile has no FROM')
  const last = (instruction: string) =>
    final.lines.filter((l) => l.toUpperCase().startsWith(`${instruction} `)).at(-1)
  return { stages, final, last, all: lines }
}

describe('deploy/kubernetes against the service configuration', () => {
  it('every env var a manifest sets is in ConfigSchema, and the literal values validate', () => {
    const known = Object.keys(ConfigSchema.properties)
    for (const c of [container, ...job.spec.template.spec.containers]) {
      for (const e of envOf(c)) expect(known, `${c.name}: ${e.name}`).toContain(e.name)
      const env = {
        ...literalEnv(c),
        DATABASE_URL: 'postgres://u:p@db.invalid:5432/x',
        ADMIN_TOKEN: 'x'.repeat(32),
      }
      expect(() => loadConfig(env), c.name).not.toThrow()
    }
  })

  it('the container port is the PORT the service listens on', () => {
    const config = loadConfig({
      ...literalEnv(container),
      DATABASE_URL: 'postgres://x/y',
      ADMIN_TOKEN: 'x',
    })
    const expected = literalEnv(container).PORT ?? String(ConfigSchema.properties.PORT.default)
    expect(config.PORT).toBe(Number(expected))
    expect(httpPort.containerPort).toBe(config.PORT)
    for (const [name, probe] of probes()) {
      expect([httpPort.name, httpPort.containerPort], name).toContain(probe.httpGet.port)
    }
  })

  it('secret references name keys of the example Secret, which holds placeholders only', () => {
    const keys = Object.keys(secret.stringData ?? secret.data ?? {})
    const refs = [container, ...job.spec.template.spec.containers].flatMap((c) =>
      envOf(c)
        .map((e) => e.valueFrom?.secretKeyRef)
        .filter(Boolean),
    )
    expect(refs.length).toBeGreaterThanOrEqual(3)
    for (const ref of refs) {
      expect(ref.name).toBe(secret.metadata.name)
      expect(keys).toContain(ref.key)
    }
    const byName = Object.fromEntries(
      envOf(container).map((e) => [e.name, e.valueFrom?.secretKeyRef]),
    )
    expect(byName.DATABASE_URL?.key).toBeTruthy()
    expect(byName.ADMIN_TOKEN?.key).toBeTruthy()
    for (const value of Object.values(secret.stringData as Record<string, string>)) {
      expect(value).toMatch(/EXAMPLE/)
    }
    expect(kustomization.resources).not.toContain('secret.example.yaml')
  })

  it('termination grace covers the preStop sleep plus SHUTDOWN_TIMEOUT_MS', () => {
    const preStop = container.lifecycle?.preStop
    const sleep = preStop?.sleep
      ? Number(preStop.sleep.seconds)
      : Number((preStop?.exec?.command as string[] | undefined)?.at(-1) ?? 0)
    expect(sleep).toBeGreaterThan(0)
    const config = loadConfig({
      ...literalEnv(container),
      DATABASE_URL: 'postgres://x/y',
      ADMIN_TOKEN: 'x',
    })
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
      sleep + config.SHUTDOWN_TIMEOUT_MS / 1000,
    )
  })

  it('the Job lets a running migration finish before Kubernetes kills it', () => {
    const spec = job.spec.template.spec
    const env = literalEnv(spec.containers[0])
    const config = loadConfig(
      { ...env, DATABASE_URL: 'postgres://x/y' },
      { requireAdminToken: false },
    )
    const grace = Math.max(1000, config.SHUTDOWN_TIMEOUT_MS / 2) / 1000
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(grace + 5)
  })

  it('probe timing: liveness is more patient than readiness, readiness slower than the DB check', () => {
    const config = loadConfig({
      ...literalEnv(container),
      DATABASE_URL: 'postgres://x/y',
      ADMIN_TOKEN: 'x',
    })
    const { livenessProbe: live, readinessProbe: ready } = container
    expect(live.failureThreshold).toBeGreaterThan(ready.failureThreshold)
    expect(live.failureThreshold * live.periodSeconds).toBeGreaterThan(
      ready.failureThreshold * ready.periodSeconds,
    )
    expect(ready.periodSeconds * 1000).toBeGreaterThan(config.HEALTH_CHECK_INTERVAL_MS)
  })

  it('three replicas, rolling with maxUnavailable 0, hardened and with resources', () => {
    expect(deployment.spec.replicas).toBe(3)
    expect(deployment.spec.strategy.type).toBe('RollingUpdate')
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    expect(isSubset(deployment.spec.selector.matchLabels, pod.metadata.labels)).toBe(true)
    for (const c of [container, ...job.spec.template.spec.containers]) {
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 1000,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      })
      expect(c.resources.requests).toMatchObject({
        cpu: expect.anything(),
        memory: expect.anything(),
      })
      expect(c.resources.limits.memory).toBeTruthy()
    }
  })

  it('the Service and the PodDisruptionBudget select the pods, on the container port', () => {
    expect(isSubset(service.spec.selector, pod.metadata.labels)).toBe(true)
    for (const port of service.spec.ports) {
      if (typeof port.targetPort === 'string') expect(port.targetPort).toBe(httpPort.name)
      else expect(port.targetPort).toBe(httpPort.containerPort)
    }
    expect(isSubset(pdb.spec.selector.matchLabels, pod.metadata.labels)).toBe(true)
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels)
    if (pdb.spec.minAvailable !== undefined)
      expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas)
  })

  it('kustomization lists files that exist and retags the image the manifests use', () => {
    for (const file of kustomization.resources) expect(existsSync(join(K8S, file)), file).toBe(true)
    const names = kustomization.images.map((i: Doc) => i.name)
    expect(names).toContain(String(container.image).split(':')[0])
  })
})

describe('the Dockerfile and the migrate Job against the build', () => {
  it('runs `node dist/server.js` in exec form, as npm start does, as a non-root user', () => {
    const d = dockerfile()
    expect(d.final.from).toMatch(/^node:22[-.]/)
    const cmd = d.last('CMD')
    expect(cmd, 'CMD in the final stage').toBeDefined()
    const exec = JSON.parse((cmd as string).slice(4))
    expect(exec).toEqual(['node', 'dist/server.js'])
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
    // `exec`: npm's shell hands its process to node, so npm's SIGTERM reaches the server.
    expect(`exec ${exec.join(' ')}`).toBe(pkg.scripts.start)
    expect(d.all.some((l) => /^ENTRYPOINT /i.test(l))).toBe(false)

    const user = (d.last('USER') ?? '').slice(5).trim()
    expect(user).not.toBe('')
    const uid = user.split(':')[0]
    expect(['root', '0']).not.toContain(uid)
    expect([String(container.securityContext.runAsUser), 'node']).toContain(uid)

    expect(d.final.lines.find((l) => l.startsWith('EXPOSE '))).toBe(
      `EXPOSE ${httpPort.containerPort}`,
    )
    expect(d.final.lines.some((l) => /^ENV .*NODE_ENV=production/.test(l))).toBe(true)
    // The production install must not run `prepare` (the build) nor keep dev dependencies.
    const prodInstall = d.all.find((l) => /npm (ci|install)\b.*--omit=dev/.test(l))
    expect(prodInstall).toMatch(/--ignore-scripts/)
  })

  it("fills Node's compile cache as the service's uid, with a script that works on this build", () => {
    const d = dockerfile()
    const lines = d.final.lines
    const dir = lines.find((l) => /^ENV NODE_COMPILE_CACHE=/.test(l))?.split('=')[1]
    expect(dir).toMatch(/^\/app\//)
    const warm = lines.findIndex((l) => /^RUN .*warm-compile-cache\.mjs/.test(l))
    expect(lines[warm]).toMatch(new RegExp(` ${dir} /app/dist$`))
    // Node keeps one folder per uid: written as any other uid, the cache is never read.
    expect(
      lines
        .slice(0, warm)
        .filter((l) => /^USER /.test(l))
        .at(-1),
    ).toBe(d.last('USER'))

    const cache = join(mkdtempSync(join(tmpdir(), 'compile-cache-')), 'cache')
    try {
      const script = join(ROOT, 'scripts', 'warm-compile-cache.mjs')
      const out = execFileSync(process.execPath, [script, cache, inject('buildDir')], {
        encoding: 'utf8',
      })
      if ('enableCompileCache' in module) {
        expect(out).toMatch(/: [1-9]\d* entries/)
        // A later start finds V8's code for the bundle and uses it (Node's own trace says so).
        const start = spawnSync(process.execPath, [join(inject('buildDir'), 'server.js')], {
          env: {
            ...process.env,
            NODE_COMPILE_CACHE: cache,
            NODE_DEBUG_NATIVE: 'COMPILE_CACHE',
            PORT: 'none',
          },
          encoding: 'utf8',
        })
        expect(start.stderr).toMatch(/cache for file:\/\/\S+\/server\.js was accepted/)
      } else {
        // Node 20: nothing to fill, and the image's Node 22 build step still succeeds there.
        expect(out).toMatch(/has no compile cache/)
        expect(existsSync(cache) && readdirSync(cache).length > 0).toBe(false)
      }
    } finally {
      rmSync(join(cache, '..'), { recursive: true, force: true })
    }
  })

  it('.dockerignore keeps local state out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')
    for (const entry of ['node_modules', 'dist', '.data', '.git', '.test-build', 'bench/results'])
      expect(ignored).toContain(entry)
  })

  it('the Job runs a command the built CLI has', () => {
    const [c] = job.spec.template.spec.containers
    expect(job.spec.template.spec.restartPolicy).toBe('Never')
    // Applied with -f, so no kustomize rewrite: the image the Deployment gets after it.
    const [retag] = kustomization.images.filter(
      (i: Doc) => i.name === String(container.image).split(':')[0],
    )
    expect(c.image).toBe(`${retag.newName}:${retag.newTag}`)
    const [node, script, command] = c.command as string[]
    expect(node).toBe('node')
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
    expect(pkg.scripts.migrate).toBe(`node ${script}`)
    const built = join(inject('buildDir'), (script as string).replace(/^dist\//, ''))
    expect(existsSync(built), built).toBe(true)
    const usage = execFileSync(process.execPath, [built, '--help'], { encoding: 'utf8' })
    expect(usage).toMatch(new RegExp(`^ {2}${command} `, 'm'))
  })
})

describe('probe paths from the manifest against the running app', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await buildTestApp({ template: 'incident' })
  })
  afterAll(() => t?.close())

  it('every probe answers 200 pass when ready; on shutdown only readiness fails', async () => {
    for (const [name, probe] of probes()) {
      const res = await t.app.inject({ url: probe.httpGet.path })
      expect(res.statusCode, name).toBe(200)
      expect(res.json(), name).toEqual({ status: 'pass' })
    }
    t.app.readiness.beginShutdown()
    for (const [name, probe] of probes()) {
      const res = await t.app.inject({ url: probe.httpGet.path })
      if (name === 'readinessProbe') {
        expect(res.statusCode).toBe(503)
        expect(res.json()).toEqual({ status: 'fail', reason: 'shutting-down' })
      } else {
        // Liveness must not follow readiness, or a draining pod would be restarted.
        expect(res.statusCode, name).toBe(200)
      }
    }
  })
})
