import { fmt } from './stats.js'

/** One line of the result table: a figure, both sides' medians, the ratio and the target. */
export interface Row {
  figure: string
  service: string
  baseline: string
  ratio: number | null
  target: string
  /** null: not measured (skipped), or informational. */
  met: boolean | null
  note?: string
}

export interface PhaseResult {
  rows: Row[]
  notes: string[]
  data: Record<string, unknown>
}

export function ratioText(r: number | null): string {
  return r === null || !Number.isFinite(r) ? '–' : `${fmt(r, 2)}×`
}

export function verdict(met: boolean | null): string {
  if (met === null) return '–'
  return met ? 'met' : 'MISSED'
}

/** The result table as Markdown (also what the terminal shows). */
export function table(rows: Row[]): string {
  const header = ['Figure', 'Service (median)', 'Baseline (median)', 'Ratio', 'Target', 'Result']
  const body = rows.map((r) => [
    r.figure,
    r.service,
    r.baseline,
    ratioText(r.ratio),
    r.target,
    verdict(r.met),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)))
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...body.map(line),
  ].join('\n')
}
