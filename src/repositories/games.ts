import { notFound } from '../lib/http-error.js'
import { FOREIGN_KEY_VIOLATION, violates } from '../lib/pg-errors.js'
import type { CreateGameBody, Game, UpdateGameBody } from '../schemas/games.js'
import { assignments, type Queryable } from './sql.js'

const COLUMNS = `g.id, g.team_id AS "teamId", g.opponent, g.starts_at AS "startsAt", g.location,
  g.is_home AS "isHome", g.team_score AS "teamScore", g.opponent_score AS "opponentScore"`

const WRITABLE: Record<keyof UpdateGameBody, string> = {
  opponent: 'opponent',
  startsAt: 'starts_at',
  location: 'location',
  isHome: 'is_home',
  teamScore: 'team_score',
  opponentScore: 'opponent_score',
}

/**
 * A start time is kept to the millisecond, as it is answered: PostgreSQL would keep the
 * microseconds of `…T18:00:00.123456Z`, a JavaScript Date (and so the answer) drops
 * them, and the client would read back another time than the one stored.
 */
const startsAt = (param: string) => `date_trunc('milliseconds', ${param}::timestamptz)`

type GameRow = Omit<Game, 'startsAt'> & { startsAt: Date }

const toGame = (row: GameRow): Game => ({ ...row, startsAt: row.startsAt.toISOString() })

/** Games: a team's schedule and scores. */
export function createGamesRepository(db: Queryable) {
  const get = async (id: number): Promise<Game | null> => {
    const { rows } = await db.query<GameRow>(`SELECT ${COLUMNS} FROM games g WHERE g.id = $1`, [id])
    return rows[0] ? toGame(rows[0]) : null
  }

  return {
    get,

    /** Null when there is no such team. */
    async listForTeam(teamId: number): Promise<Game[] | null> {
      // One statement from `teams`: an unknown team gives no row, an empty schedule one row of nulls.
      const { rows } = await db.query<GameRow & { found: number }>(
        `SELECT t.id AS found, ${COLUMNS}
           FROM teams t LEFT JOIN games g ON g.team_id = t.id
          WHERE t.id = $1
          ORDER BY g.starts_at, g.id`,
        [teamId],
      )
      if (rows.length === 0) return null
      return rows.filter((r) => r.id !== null).map(({ found: _, ...row }) => toGame(row))
    },

    async create(teamId: number, game: CreateGameBody): Promise<Game> {
      try {
        const { rows } = await db.query<GameRow>(
          `INSERT INTO games AS g
             (team_id, opponent, starts_at, location, is_home, team_score, opponent_score)
           VALUES ($1, $2, ${startsAt('$3')}, $4, COALESCE($5::boolean, true), $6, $7)
           RETURNING ${COLUMNS}`,
          [
            teamId,
            game.opponent,
            game.startsAt,
            game.location ?? null,
            game.isHome ?? null,
            game.teamScore ?? null,
            game.opponentScore ?? null,
          ],
        )
        return toGame(rows[0] as GameRow)
      } catch (err) {
        if (violates(err, FOREIGN_KEY_VIOLATION, 'games_team_id_fkey')) {
          throw notFound(`team ${teamId}`)
        }
        throw err
      }
    },

    /** Null when there is no such game. */
    async update(id: number, changes: UpdateGameBody): Promise<Game | null> {
      const set = assignments(WRITABLE, changes, 2, { startsAt })
      if (set.values.length === 0) return get(id)
      const { rows } = await db.query<GameRow>(
        `UPDATE games AS g SET ${set.sql} WHERE g.id = $1 RETURNING ${COLUMNS}`,
        [id, ...set.values],
      )
      return rows[0] ? toGame(rows[0]) : null
    },

    async remove(id: number): Promise<boolean> {
      const { rowCount } = await db.query('DELETE FROM games WHERE id = $1', [id])
      return rowCount === 1
    },
  }
}

export type GamesRepository = ReturnType<typeof createGamesRepository>
