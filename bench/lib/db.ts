import pg from 'pg'
import { databaseUrl } from '../../test/helpers/postgres.js'

export { databaseUrl }

/** A superuser session on the server's `postgres` database: creates databases and reads statistics. */
export class Admin {
  private constructor(
    readonly serverUrl: string,
    private readonly client: pg.Client,
  ) {}

  static async connect(serverUrl: string): Promise<Admin> {
    const client = new pg.Client({
      connectionString: serverUrl,
      application_name: 'bench-admin',
    })
    client.on('error', () => {})
    await client.connect()
    return new Admin(serverUrl, client)
  }

  url(database: string): string {
    return databaseUrl(this.serverUrl, database)
  }

  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
    return this.client.query<R>(text, values)
  }

  /** Creates an empty database (dropping any leftover of an earlier run) and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    await this.client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await this.client.query(`CREATE DATABASE ${name}`)
    return this.url(name)
  }

  async dropDatabase(name: string): Promise<void> {
    await this.client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  }

  /**
   * Committed transactions of `database` as the statistics system has them
   * (read from this session on another database, so reading does not count).
   */
  async xactCommit(database: string): Promise<number> {
    const { rows } = await this.client.query<{ n: string }>(
      'SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = $1',
      [database],
    )
    return Number(rows[0]?.n ?? Number.NaN)
  }

  /** This session's backend pid (its parent is the postmaster when the server is local). */
  async backendPid(): Promise<number> {
    const { rows } = await this.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    return rows[0]?.pid ?? 0
  }

  /** The server's clock, so windows compare with pg_stat_activity timestamps. */
  async now(): Promise<string> {
    const { rows } = await this.client.query<{ t: string }>('SELECT clock_timestamp()::text AS t')
    return rows[0]?.t ?? ''
  }

  /**
   * Sessions of `database` whose application name starts with `prefix` and that
   * started a statement after `since`: a query per request would show here at once
   * (pg_stat_activity is updated when a statement starts, not batched like pg_stat_database).
   */
  async sessionsActiveSince(database: string, prefix: string, since: string) {
    const { rows } = await this.client.query<{
      pid: number
      application: string
      query: string
      query_start: string
    }>(
      `SELECT pid, application_name AS application, query, query_start::text
         FROM pg_stat_activity
        WHERE datname = $1 AND starts_with(application_name, $2) AND query_start >= $3::timestamptz`,
      [database, prefix, since],
    )
    return rows
  }

  async end(): Promise<void> {
    await this.client.end().catch(() => {})
  }
}

/**
 * Seeds rosters: `teams` teams of `perTeam` players each, jersey numbers 0..perTeam-1
 * except every fifth player without one (the NULLS LAST branch of the ORDER BY).
 */
export async function seedRosters(url: string, teams = 200, perTeam = 15): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench-seed' })
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query('TRUNCATE player_teams, players, teams RESTART IDENTITY CASCADE')
    await client.query(
      `INSERT INTO teams (name, age_group, season)
       SELECT 'Team ' || t, 'U' || (8 + t % 10), '2026' FROM generate_series(1, $1) t`,
      [teams],
    )
    await client.query(
      `INSERT INTO players (first_name, last_name, birth_date)
       SELECT 'First' || i, 'Last' || (i * 7919 % 1000), date '2012-01-01' + (i % 1500)
         FROM generate_series(1, $1) i`,
      [teams * perTeam],
    )
    await client.query(
      `INSERT INTO player_teams (player_id, team_id, jersey_number, role)
       SELECT i, 1 + (i - 1) / $2, CASE WHEN i % 5 = 0 THEN NULL ELSE (i - 1) % $2 END,
              CASE WHEN i % $2 = 1 THEN 'captain' ELSE 'player' END
         FROM generate_series(1, $1) i`,
      [teams * perTeam, perTeam],
    )
    await client.query('COMMIT')
    // The whole database, catalogs included (the chain's DDL filled them): autovacuum
    // then has nothing to do during the measured windows, where it would count as activity.
    await client.query('VACUUM (ANALYZE)')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    await client.end()
  }
}
