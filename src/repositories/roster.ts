import { conflict, HttpError, notFound } from '../lib/http-error.js'
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, violates } from '../lib/pg-errors.js'
import type { PutRosterEntryBody, RosterItem } from '../schemas/roster.js'
import type { Queryable } from './sql.js'

const ITEM = `pt.player_id AS "playerId", p.first_name AS "firstName",
  p.last_name AS "lastName", pt.jersey_number AS "jerseyNumber", pt.role`

/** Rosters: `player_teams`, where the database keeps jersey numbers unique per team. */
export function createRosterRepository(db: Queryable) {
  /** The 404 naming the team, else the player, that does not exist; null when both do. */
  const unknownId = async (teamId: number, playerId: number): Promise<HttpError | null> => {
    const { rows } = await db.query<{ team: boolean; player: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1) AS team,
              EXISTS (SELECT 1 FROM players WHERE id = $2) AS player`,
      [teamId, playerId],
    )
    if (!rows[0]?.team) return notFound(`team ${teamId}`)
    if (!rows[0]?.player) return notFound(`player ${playerId}`)
    return null
  }

  return {
    /** Null when there is no such team. */
    async list(teamId: number): Promise<RosterItem[] | null> {
      // One statement from `teams`: an unknown team gives no row, an empty roster one row of nulls.
      const { rows } = await db.query<RosterItem & { found: number }>(
        `SELECT t.id AS found, ${ITEM}
           FROM teams t
           LEFT JOIN player_teams pt ON pt.team_id = t.id
           LEFT JOIN players p ON p.id = pt.player_id
          WHERE t.id = $1
          ORDER BY pt.jersey_number NULLS LAST, p.last_name, p.first_name, p.id`,
        [teamId],
      )
      if (rows.length === 0) return null
      // An empty roster is the one row of nulls. The rows go out as they are: the response
      // schema's serializer writes only its own fields, so `found` is never sent.
      return rows[0]?.playerId === null ? [] : rows
    },

    /**
     * Adds the player to the roster or updates their entry, in one statement so
     * that two admins racing for a number get one success and one 409. Omitted
     * fields keep their value (a new entry: no number, role 'player').
     */
    async put(
      teamId: number,
      playerId: number,
      entry: PutRosterEntryBody,
    ): Promise<{ entry: RosterItem; created: boolean }> {
      try {
        // `xmax = 0`: the row version was inserted by this statement; an ON CONFLICT update sets xmax.
        // LEFT JOIN: the foreign key is checked with a fresh snapshot, the join with the
        // statement's. A player committed while the insert waited (on the number's unique
        // index, held by another transaction) passes the one and is missing from the other.
        const { rows } = await db.query<RosterItem & { created: boolean }>(
          `WITH pt AS (
             INSERT INTO player_teams AS cur (team_id, player_id, jersey_number, role)
             VALUES ($1, $2, $3::smallint, COALESCE($4::text, 'player'))
             ON CONFLICT (player_id, team_id) DO UPDATE SET
               jersey_number = CASE WHEN $5::boolean THEN EXCLUDED.jersey_number
                                    ELSE cur.jersey_number END,
               role = COALESCE($4::text, cur.role)
             RETURNING cur.*, (xmax = 0) AS created
           )
           SELECT ${ITEM}, pt.created FROM pt LEFT JOIN players p ON p.id = pt.player_id`,
          [
            teamId,
            playerId,
            entry.jerseyNumber ?? null,
            entry.role ?? null,
            'jerseyNumber' in entry,
          ],
        )
        const { created, ...row } = rows[0] as RosterItem & { created: boolean }
        if (row.firstName === null) {
          // The write committed: read the names in a statement of their own (a new snapshot).
          const names = await db.query<Pick<RosterItem, 'firstName' | 'lastName'>>(
            'SELECT first_name AS "firstName", last_name AS "lastName" FROM players WHERE id = $1',
            [playerId],
          )
          // Deleted since (its roster entries with it): unknown now.
          if (!names.rows[0]) throw notFound(`player ${playerId}`)
          Object.assign(row, names.rows[0])
        }
        return { entry: row, created }
      } catch (err) {
        if (violates(err, UNIQUE_VIOLATION, 'ux_player_teams_team_jersey')) {
          // The number is checked on insert, the foreign keys only at the end of the
          // statement: an unknown player is a 404 before it is a 409.
          throw (
            (await unknownId(teamId, playerId)) ??
            conflict(`jersey number ${entry.jerseyNumber} is already taken on this team`)
          )
        }
        // Whichever key PostgreSQL checked first: name the team before the player, as
        // DELETE does (the path's order).
        if (
          violates(err, FOREIGN_KEY_VIOLATION, 'player_teams_team_id_fkey') ||
          violates(err, FOREIGN_KEY_VIOLATION, 'player_teams_player_id_fkey')
        ) {
          throw (await unknownId(teamId, playerId)) ?? err
        }
        throw err
      }
    },

    /**
     * Throws a 404 naming what is missing: the team, the player, or the entry. The
     * player's legacy `team_id` (what 023 backfilled rosters from) is cleared when it
     * names this team: should 023 ever run again (its ledger row lost), it must not put
     * back a player the club took off the roster.
     */
    async remove(teamId: number, playerId: number): Promise<void> {
      // The player's row is locked before the roster row, the order in which deleting a
      // player or a team locks them (the delete, then its cascades): the other order
      // deadlocked against them (40P01) under a race.
      const { rowCount } = await db.query(
        `WITH player AS (
           SELECT id FROM players WHERE id = $2 FOR NO KEY UPDATE
         ), removed AS (
           DELETE FROM player_teams pt USING player
            WHERE pt.team_id = $1 AND pt.player_id = player.id
           RETURNING pt.player_id, pt.team_id
         ), legacy AS (
           UPDATE players p SET team_id = NULL
             FROM removed r
            WHERE p.id = r.player_id AND p.team_id = r.team_id
         )
         SELECT 1 FROM removed`,
        [teamId, playerId],
      )
      if (rowCount !== 1) {
        throw (
          (await unknownId(teamId, playerId)) ??
          new HttpError(
            404,
            `player ${playerId} is not on the roster of team ${teamId}`,
            'NOT_FOUND',
          )
        )
      }
    },
  }
}

export type RosterRepository = ReturnType<typeof createRosterRepository>
