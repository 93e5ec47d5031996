import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ADMIN_TOKEN } from '../helpers/app.js'
import { TEMPLATES } from '../helpers/database.js'
import { advisoryLocks, seededRandom, serviceSessions, sleep, until } from '../helpers/faults.js'
import { databaseUrl, withClient } from '../helpers/postgres.js'
import { type ServiceProcess, startService } from '../helpers/process.js'

/**
 * SIGKILL at random instants while the service migrates a large copy of the
 * incident database (150k extra players, so 023's backfill takes a while).
 * Every migration and its ledger row commit together, so after any kill the
 * ledger and the schema agree, and the next boot finishes with nothing lost.
 *
 * The kill instants are stratified over the duration of an uninterrupted run
 * of the same data (measured first, on a copy): kill k lands at a random point
 * of the k-th fifth. SIGKILL_SEED=<n> replays a run.
 */
const EXTRA_PLAYERS = 150_000
const EXTRA_TEAMS = 1500
const KILLS = 5
const SEED = Number(process.env.SIGKILL_SEED ?? Math.floor(Math.random() * 2 ** 31))

const server = () => inject('pgServerUrl')

async function createDatabase(template: string): Promise<{ name: string; url: string }> {
  const name = `t_sigkill_${randomBytes(5).toString('hex')}`
  await withClient(server(), (c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`))
  return { name, url: databaseUrl(server(), name) }
}

const dropDatabase = (name: string) =>
  withClient(server(), (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))

/** 1500 more teams and 150k more players, each with a team and a number unique on it; every 7th with a note. */
async function grow(url: string) {
  await withClient(url, async (c) => {
    await c.query(
      `INSERT INTO teams (name, age_group, season, is_active)
       SELECT 'Generated ' || g, 'U' || (8 + g % 10), '2025-26', true
         FROM generate_series(1, ${EXTRA_TEAMS}) g`,
    )
    await c.query(
      `WITH t AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k
                    FROM teams WHERE name LIKE 'Generated %')
       INSERT INTO players (first_name, last_name, birth_date, team_id, jersey_number, position, custom_notes)
       SELECT 'First' || g, 'Last' || (g % 5000), date '2008-01-01' + (g % 3000), t.id,
              (g / ${EXTRA_TEAMS}) % 100, (ARRAY['guard', 'forward', 'center'])[1 + g % 3],
              CASE WHEN g % 7 = 0 THEN 'generated note ' || g END
         FROM generate_series(0, ${EXTRA_PLAYERS - 1}) g JOIN t ON t.k = g % ${EXTRA_TEAMS}`,
    )
    await c.query('ANALYZE')
  })
}

interface Facts {
  players: number
  withTeam: number
  notes: string
}

/** What must never change: row counts and every note. */
async function facts(c: pg.Client): Promise<Facts> {
  const { rows } = await c.query<{ players: string; with_team: string; notes: string }>(
    `SELECT count(*) AS players, count(team_id) AS with_team,
            md5(string_agg(id || ':' || coalesce(custom_notes, ''), ',' ORDER BY id)) AS notes
       FROM players`,
  )
  const row = rows[0]
  return {
    players: Number(row?.players),
    withTeam: Number(row?.with_team),
    notes: row?.notes ?? '',
  }
}

interface Consistency {
  ledger: string[]
  problems: string[]
  playerTeams: number | null
  facts: Facts
}

/**
 * Reads the ledger and the schema in one REPEATABLE READ snapshot and lists
 * every disagreement: an object a ledger row says was created or found but is
 * missing, an object of a migration not in the ledger that exists anyway, a
 * backfill without its ledger row or the other way round.
 */
async function consistency(url: string): Promise<Consistency> {
  return withClient(url, async (c) => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    try {
      const problems: string[] = []
      const hasLedger =
        (await c.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS x")).rows[0]?.x ===
        true
      const rows = hasLedger
        ? (
            await c.query<{
              name: string
              changes: Array<{ object: string; action: string; rows?: number }>
            }>('SELECT name, changes FROM schema_migrations ORDER BY name')
          ).rows
        : []
      const ledger = rows.map((r) => r.name)
      const exists = async (object: string) => {
        const [table, column] = object.split('.')
        if (column) {
          const r = await c.query(
            `SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
            [table, column],
          )
          return r.rowCount === 1
        }
        const r = await c.query(
          `SELECT 1 WHERE to_regclass($1) IS NOT NULL
                OR EXISTS (SELECT 1 FROM pg_constraint WHERE conname = $1)`,
          [object],
        )
        return r.rowCount === 1
      }
      for (const row of rows) {
        for (const change of row.changes) {
          if (
            ['created', 'exists', 'repaired'].includes(change.action) &&
            !(await exists(change.object))
          ) {
            problems.push(`${row.name} says ${change.object} ${change.action}, but it is missing`)
          }
        }
      }
      // Objects only the chain creates (the incident database has neither): present <=> ledger row.
      for (const [migration, object] of [
        ['019_player_teams', 'player_teams'],
        ['019_player_teams', 'ux_player_teams_team_jersey'],
        ['021_oauth_tokens', 'oauth_tokens'],
      ] as const) {
        if ((await exists(object)) !== ledger.includes(migration)) {
          problems.push(
            `${object} ${ledger.includes(migration) ? 'missing' : 'present'} with ${migration} ${ledger.includes(migration) ? 'in' : 'not in'} the ledger`,
          )
        }
      }
      const f = await facts(c)
      let playerTeams: number | null = null
      if (await exists('player_teams')) {
        playerTeams = Number((await c.query('SELECT count(*) AS n FROM player_teams')).rows[0]?.n)
        const backfilled = ledger.includes('023_jersey_backfill')
        if (backfilled && playerTeams !== f.withTeam) {
          problems.push(
            `023 in the ledger but player_teams has ${playerTeams} of ${f.withTeam} rows`,
          )
        }
        if (!backfilled && playerTeams !== 0) {
          problems.push(`023 not in the ledger but player_teams has ${playerTeams} rows`)
        }
        const recorded = rows
          .find((r) => r.name === '023_jersey_backfill')
          ?.changes.find((x) => x.object === 'player_teams')?.rows
        if (backfilled && recorded !== playerTeams) {
          problems.push(`023's ledger row says ${recorded} rows, player_teams has ${playerTeams}`)
        }
      }
      return { ledger, problems, playerTeams, facts: f }
    } finally {
      await c.query('ROLLBACK')
    }
  })
}

/** Resolves with how long after `since` the backends `pids` (a killed service's orphans) ended. */
async function trackOrphans(pids: number[], since: number): Promise<number> {
  await until(
    'orphaned backends to end',
    () =>
      withClient(server(), async (c) => {
        const r = await c.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1)', [pids])
        return r.rowCount === 0
      }),
    60_000,
    100,
  )
  return performance.now() - since
}

const rosterDigest = (url: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query<{ d: string }>(
      `SELECT md5(string_agg(player_id || ':' || team_id || ':' || coalesce(jersey_number::text, '-'), ','
                             ORDER BY player_id, team_id)) AS d
         FROM player_teams`,
    )
    return rows[0]?.d ?? ''
  })

describe('SIGKILL at random instants while a large database migrates', () => {
  let big: { name: string; url: string }
  let before: Facts
  const made: string[] = []

  beforeAll(async () => {
    const started = performance.now()
    big = await createDatabase(TEMPLATES.incident)
    made.push(big.name)
    await grow(big.url)
    before = await withClient(big.url, facts)
    console.log(
      `sigkill: seed ${SEED} (replay with SIGKILL_SEED=${SEED}); ${before.players} players, ${before.withTeam} with a team,` +
        ` generated in ${Math.round(performance.now() - started)} ms`,
    )
  }, 120_000)
  afterAll(async () => {
    for (const name of made) await dropDatabase(name).catch(() => {})
  })

  it('after every kill the ledger and the schema agree; the next boot completes with nothing lost', async () => {
    const env = (url: string) => ({ DATABASE_URL: url, ADMIN_TOKEN })

    // An uninterrupted run on a copy: how long a boot takes, and the roster it must produce.
    const reference = await createDatabase(big.name)
    made.push(reference.name)
    const spawned = performance.now()
    const ref = await startService(env(reference.url))
    await ref.waitFor('/health/ready', (s) => s === 200, 90_000)
    const runMs = performance.now() - spawned
    const backfillMs = ref.logs.find((l) => l.migration === '023_jersey_backfill')?.durationMs
    await ref.stop('SIGTERM')
    const referenceRoster = await rosterDigest(reference.url)
    await dropDatabase(reference.name)
    console.log(
      `sigkill: an uninterrupted boot takes ${Math.round(runMs)} ms (spawn to ready), 023's backfill ${backfillMs} ms`,
    )

    const random = seededRandom(SEED)
    const orphanLifetimes: Promise<number>[] = []
    const boots: string[] = []
    let lastLedger: string[] = []
    for (let k = 0; k < KILLS; k++) {
      const delay = Math.round((runMs * (k + random())) / KILLS)
      const service: ServiceProcess = await startService(env(big.url))
      const t0 = performance.now()
      await sleep(Math.max(0, delay - (performance.now() - t0)))
      service.child.kill('SIGKILL')
      const exit = await service.exited
      expect(exit.signal).toBe('SIGKILL')

      const killedAt = performance.now()
      const seen = await consistency(big.url)
      const orphans = (await serviceSessions(server(), big.name)).filter(
        (s) => s.state === 'active',
      )
      if (orphans.length > 0) {
        orphanLifetimes.push(
          trackOrphans(
            orphans.map((o) => o.pid),
            killedAt,
          ),
        )
      }
      const applied = service.logs
        .filter((l) => l.msg === 'migration applied')
        .map((l) => String(l.migration).slice(0, 3))
      const retries = service.logs.filter((l) => l.msg === 'migration hit lock_timeout; retrying')
      boots.push(
        `kill ${k + 1} at ${delay} ms: this boot applied [${applied.join(' ')}]${retries.length ? ` after ${retries.length} lock_timeout retries` : ''};` +
          ` ledger ${seen.ledger.length} rows, player_teams ${seen.playerTeams ?? 'absent'};` +
          ` ${orphans.length} orphaned backend(s) still active`,
      )
      expect(seen.problems, boots.at(-1)).toEqual([])
      expect(seen.facts).toEqual(before)
      // Nothing committed is ever lost: the ledger only grows.
      expect(seen.ledger.slice(0, lastLedger.length)).toEqual(lastLedger)
      lastLedger = seen.ledger
    }
    // The session that held the advisory lock died with the process.
    const lockGone = performance.now()
    await until(
      'the advisory lock to go',
      async () => (await advisoryLocks(server(), big.name)) === 0,
      10_000,
    )
    const lockGoneMs = performance.now() - lockGone

    const lifetimes = (await Promise.all(orphanLifetimes)).map(Math.round)
    const finalStart = performance.now()
    const last = await startService(env(big.url))
    await last.waitFor('/health/ready', (s) => s === 200, 90_000)
    const finalMs = performance.now() - finalStart
    const seen = await consistency(big.url)
    const finalRetries = last.logs.filter(
      (l) => l.msg === 'migration hit lock_timeout; retrying',
    ).length
    console.log(
      `sigkill:\n  ${boots.join('\n  ')}\n  orphaned backends lived ${lifetimes.join(', ') || '-'} ms after their kill;` +
        ` advisory lock gone ${Math.round(lockGoneMs)} ms after the last check;` +
        ` final boot ready in ${Math.round(finalMs)} ms (${finalRetries} lock_timeout retries),` +
        ` applied [${last.logs
          .filter((l) => l.msg === 'migration applied')
          .map((l) => String(l.migration).slice(0, 3))
          .join(' ')}]`,
    )
    // client_connection_check_interval (1 s) ends a killed run's backend mid-statement.
    for (const ms of lifetimes) expect(ms).toBeLessThan(2500)
    expect(seen.problems).toEqual([])
    expect(seen.ledger).toHaveLength(23)
    expect(seen.facts).toEqual(before)
    expect(seen.playerTeams).toBe(before.withTeam)
    // The same roster as the uninterrupted run: the kills cost nothing.
    expect(await rosterDigest(big.url)).toBe(referenceRoster)
    expect(await last.stop('SIGTERM')).toEqual({ code: 0, signal: null })
  })
})
