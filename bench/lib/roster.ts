import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The roster SQL of issue 6, used when src/ has no roster query yet. */
export const ISSUE_ROSTER_SQL =
  'SELECT pt.player_id, p.first_name, p.last_name, pt.jersey_number, pt.role FROM player_teams pt JOIN players p ON p.id = pt.player_id WHERE pt.team_id = $1 ORDER BY pt.jersey_number NULLS LAST, p.last_name, p.first_name, p.id'

const normalise = (sql: string) => sql.replace(/\s+/g, ' ').trim()

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await sourceFiles(path)))
    else if (/\.(?:ts|js|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

export interface RosterSql {
  sql: string
  /** Where it came from: a file of src/, or the issue's text. */
  source: string
  note: string
}

/**
 * The roster query the service runs, read from src/ (a string literal that reads
 * from player_teams, filters on team_id and orders by jersey number), so the bare
 * handler runs the same SQL. Falls back to the issue's SQL when none is found.
 */
export async function findRosterSql(root: string): Promise<RosterSql> {
  const literal = /`([^`]*)`|'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"/g
  const found: Array<{ sql: string; file: string }> = []
  for (const file of await sourceFiles(join(root, 'src'))) {
    const text = await readFile(file, 'utf8')
    // String constants of the file (`const ENTRY = \`...\``), so `${ENTRY}` inside a query resolves.
    const constants = new Map<string, string>()
    for (const m of text.matchAll(
      /\bconst\s+([A-Za-z_$][\w$]*)\s*=\s*(?:`([^`$]*)`|'([^'\n]*)')/g,
    )) {
      if (m[1]) constants.set(m[1], m[2] ?? m[3] ?? '')
    }
    for (const m of text.matchAll(literal)) {
      const body = (m[1] ?? m[2] ?? m[3] ?? '').replace(
        /\$\{\s*([A-Za-z_$][\w$]*)\s*\}/g,
        (all, name: string) => constants.get(name) ?? all,
      )
      if (
        /^\s*select\b/i.test(body) &&
        /\bplayer_teams\b/i.test(body) &&
        /\$1\b/.test(body) &&
        /order\s+by[\s\S]*jersey_number/i.test(body) &&
        !body.includes('${')
      ) {
        found.push({ sql: normalise(body), file: file.slice(root.length + 1) })
      }
    }
  }
  const unique = [...new Map(found.map((f) => [f.sql, f])).values()]
  const first = unique[0]
  if (unique.length === 1 && first) {
    const same = first.sql === normalise(ISSUE_ROSTER_SQL)
    return {
      sql: first.sql,
      source: first.file,
      note: same
        ? `roster SQL in ${first.file} is the issue's SQL; the bare handler runs it`
        : `roster SQL taken from ${first.file} (differs from the issue's text); the bare handler runs it: ${first.sql}`,
    }
  }
  return {
    sql: ISSUE_ROSTER_SQL,
    source: 'issue 6',
    note:
      unique.length === 0
        ? "no roster SQL found in src/; the bare handler runs the issue's SQL"
        : `several roster-like queries in src/ (${unique.map((u) => u.file).join(', ')}); the bare handler runs the issue's SQL`,
  }
}
