// Summarises a V8 .cpuprofile (node --cpu-prof): self time by package and the top
// functions, optionally only the first N ms (the boot) of the profile.
// usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [--until-ms N] [--from-ms N] [--top N]
import { readFile } from 'node:fs/promises'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** Where a frame's code comes from: an npm package, node itself, the service, or V8. */
export function origin(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg?.[1]) return pkg[1]
  if (url.startsWith('node:')) return 'node:internal'
  if (/\/bench\/results\/build-\d+\/|\/dist\//.test(url)) return 'service'
  if (url.includes('/bench/')) return 'bench'
  return url
}

export async function summarise(
  file: string,
  opts: { fromMs?: number; untilMs?: number; top?: number } = {},
) {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<number, number>()
  const inclusive = new Map<string, number>()
  let t = 0
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    t += dt
    if (opts.fromMs !== undefined && t < opts.fromMs) continue
    if (opts.untilMs !== undefined && t > opts.untilMs) break
    const id = profile.samples[i] ?? 0
    self.set(id, (self.get(id) ?? 0) + dt)
    total += dt
    // Inclusive time per package: each package counted once per sample.
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur)
      if (!node) break
      seen.add(origin(node.callFrame.url, node.callFrame.functionName))
    }
    for (const o of seen) inclusive.set(o, (inclusive.get(o) ?? 0) + dt)
  }
  const byOrigin = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (const [id, ms] of self) {
    const node = byId.get(id)
    if (!node) continue
    const { functionName, url, lineNumber } = node.callFrame
    const o = origin(url, functionName)
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + ms)
    const key = `${functionName || '(anonymous)'} ${o}${url ? `:${lineNumber + 1}` : ''}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms)
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1])
  return {
    totalMs: total,
    selfByOrigin: sorted(byOrigin),
    inclusiveByOrigin: sorted(inclusive),
    topFunctions: sorted(byFunction).slice(0, opts.top ?? 25),
  }
}

const isMain = process.argv[1]?.endsWith('profile-summary.ts')
if (isMain) {
  const [file, ...rest] = process.argv.slice(2)
  if (!file) {
    process.stderr.write(
      'usage: profile-summary.ts <file.cpuprofile> [--from-ms N] [--until-ms N] [--top N]\n',
    )
    process.exit(2)
  }
  const flag = (name: string) => {
    const i = rest.indexOf(name)
    return i >= 0 && rest[i + 1] !== undefined ? Number(rest[i + 1]) : undefined
  }
  const s = await summarise(file, {
    fromMs: flag('--from-ms'),
    untilMs: flag('--until-ms'),
    top: flag('--top'),
  })
  const line = ([k, v]: [string, number]) =>
    `  ${v.toFixed(1).padStart(8)} ms ${((100 * v) / s.totalMs).toFixed(1).padStart(5)}%  ${k}`
  process.stdout.write(`${file}: ${s.totalMs.toFixed(0)} ms sampled\nself time by origin:\n`)
  process.stdout.write(`${s.selfByOrigin.slice(0, 15).map(line).join('\n')}\n`)
  process.stdout.write(
    `inclusive time by origin:\n${s.inclusiveByOrigin.slice(0, 15).map(line).join('\n')}\n`,
  )
  process.stdout.write(`top functions (self):\n${s.topFunctions.map(line).join('\n')}\n`)
}
