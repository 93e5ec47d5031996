import { decodePlayerCursor, encodePlayerCursor } from '../lib/cursor.js'
import {
  type CreatePlayerBody,
  DEFAULT_PAGE_SIZE,
  type ListPlayersQuery,
  type Player,
  type PlayerPage,
  type UpdatePlayerBody,
} from '../schemas/players.js'
import { assignments, type Queryable } from './sql.js'

// to_char, not the pg date parser: that turns a date into a local-midnight Date and can shift the day.
const COLUMNS = `p.id, p.first_name AS "firstName", p.last_name AS "lastName",
  to_char(p.birth_date, 'YYYY-MM-DD') AS "birthDate", p.position, p.custom_notes AS "customNotes",
  COALESCE(
    (SELECT json_agg(json_build_object(
              'teamId', pt.team_id, 'jerseyNumber', pt.jersey_number, 'role', pt.role)
            ORDER BY pt.team_id)
       FROM player_teams pt WHERE pt.player_id = p.id),
    '[]'::json) AS teams`

const WRITABLE: Record<keyof UpdatePlayerBody, string> = {
  firstName: 'first_name',
  lastName: 'last_name',
  birthDate: 'birth_date',
  position: 'position',
  customNotes: 'custom_notes',
}

/** `search` as a LIKE pattern that matches it literally. */
const containing = (search: string) => `%${search.replace(/[\\%_]/g, '\\$&')}%`

/** Players: keyset-paginated listing, and single-statement writes on `players`. */
export function createPlayersRepository(db: Queryable) {
  const get = async (id: number): Promise<Player | null> => {
    const { rows } = await db.query<Player>(`SELECT ${COLUMNS} FROM players p WHERE p.id = $1`, [
      id,
    ])
    return rows[0] ?? null
  }

  return {
    get,

    /**
     * Ordered by last name, first name, id (the ix_players_last_first index). Null when
     * `teamId` names no team.
     */
    async list(query: ListPlayersQuery): Promise<PlayerPage | null> {
      const limit = query.limit ?? DEFAULT_PAGE_SIZE
      const where: string[] = []
      const values: unknown[] = []
      const param = (value: unknown) => {
        values.push(value)
        return `$${values.length}`
      }
      const team = query.teamId === undefined ? undefined : param(query.teamId)
      if (team !== undefined) {
        where.push(
          `EXISTS (SELECT 1 FROM player_teams pt WHERE pt.player_id = p.id AND pt.team_id = ${team})`,
        )
      }
      const search = query.search?.trim()
      if (search) {
        where.push(`(p.first_name || ' ' || p.last_name) ILIKE ${param(containing(search))}`)
      }
      if (query.cursor !== undefined) {
        const [lastName, firstName, id] = decodePlayerCursor(query.cursor)
        where.push(
          `(p.last_name, p.first_name, p.id) > (${param(lastName)}::text, ${param(firstName)}::text, ${param(id)}::integer)`,
        )
      }
      const page = `SELECT ${COLUMNS} FROM players p
          ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY p.last_name, p.first_name, p.id
          LIMIT ${param(limit + 1)}`
      // With a team, one statement from `teams` (no round trip to tell an unknown team from
      // one nobody matches): an unknown team gives no row, an empty page one row of nulls.
      const { rows } = await db.query<Player>(
        team === undefined
          ? page
          : `SELECT page.* FROM teams t LEFT JOIN (${page}) page ON true
              WHERE t.id = ${team}
              ORDER BY page."lastName", page."firstName", page.id`,
        values,
      )
      if (team !== undefined && rows.length === 0) return null
      const items = rows[0]?.id === null ? [] : rows.slice(0, limit)
      const last = items.at(-1)
      return {
        items,
        nextCursor:
          rows.length > limit && last
            ? encodePlayerCursor([last.lastName, last.firstName, last.id])
            : null,
      }
    },

    /** Answers the player as stored (text the database normalised included), like `get`. */
    async create(player: CreatePlayerBody): Promise<Player> {
      const { rows } = await db.query<Player>(
        `WITH p AS (
           INSERT INTO players (first_name, last_name, birth_date, position, custom_notes)
           VALUES ($1, $2, $3, $4, $5) RETURNING *)
         SELECT ${COLUMNS} FROM p`,
        [
          player.firstName,
          player.lastName,
          player.birthDate ?? null,
          player.position ?? null,
          player.customNotes ?? null,
        ],
      )
      return rows[0] as Player
    },

    /** Null when there is no such player. */
    async update(id: number, changes: UpdatePlayerBody): Promise<Player | null> {
      const set = assignments(WRITABLE, changes, 2)
      if (set.values.length === 0) return get(id)
      const { rows } = await db.query<Player>(
        `WITH p AS (UPDATE players SET ${set.sql} WHERE id = $1 RETURNING *)
         SELECT ${COLUMNS} FROM p`,
        [id, ...set.values],
      )
      return rows[0] ?? null
    },

    /** Removes the player and, by cascade, their roster entries, guardians and registrations. */
    async remove(id: number): Promise<boolean> {
      const { rowCount } = await db.query('DELETE FROM players WHERE id = $1', [id])
      return rowCount === 1
    },
  }
}

export type PlayersRepository = ReturnType<typeof createPlayersRepository>
