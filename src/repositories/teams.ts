import { notFound } from '../lib/http-error.js'
import { FOREIGN_KEY_VIOLATION, violates } from '../lib/pg-errors.js'
import type { CreateTeamBody, Team, UpdateTeamBody } from '../schemas/teams.js'
import { assignments, type Queryable } from './sql.js'

const COLUMNS = `id, name, age_group AS "ageGroup", season, is_active AS "isActive",
  head_coach_id AS "headCoachId"`

const WRITABLE: Record<keyof UpdateTeamBody, string> = {
  name: 'name',
  ageGroup: 'age_group',
  season: 'season',
  isActive: 'is_active',
  headCoachId: 'head_coach_id',
}

/** An unknown head coach is the client's reference to something missing: a 404 naming it. */
function unknownCoach(err: unknown, headCoachId: number | null | undefined): unknown {
  if (violates(err, FOREIGN_KEY_VIOLATION, 'teams_head_coach_id_fkey')) {
    return notFound(`coach ${headCoachId}`)
  }
  return err
}

/** Teams: reads and single-statement writes on `teams`. */
export function createTeamsRepository(db: Queryable) {
  return {
    async list(): Promise<Team[]> {
      const { rows } = await db.query<Team>(`SELECT ${COLUMNS} FROM teams ORDER BY id`)
      return rows
    },

    async get(id: number): Promise<Team | null> {
      const { rows } = await db.query<Team>(`SELECT ${COLUMNS} FROM teams WHERE id = $1`, [id])
      return rows[0] ?? null
    },

    async exists(id: number): Promise<boolean> {
      const { rowCount } = await db.query('SELECT 1 FROM teams WHERE id = $1', [id])
      return rowCount === 1
    },

    async create(team: CreateTeamBody): Promise<Team> {
      try {
        const { rows } = await db.query<Team>(
          `INSERT INTO teams (name, age_group, season, is_active, head_coach_id)
           VALUES ($1, $2, $3, COALESCE($4::boolean, true), $5)
           RETURNING ${COLUMNS}`,
          [team.name, team.ageGroup, team.season, team.isActive ?? null, team.headCoachId ?? null],
        )
        return rows[0] as Team
      } catch (err) {
        throw unknownCoach(err, team.headCoachId)
      }
    },

    /** Null when there is no such team. */
    async update(id: number, changes: UpdateTeamBody): Promise<Team | null> {
      const set = assignments(WRITABLE, changes, 2)
      if (set.values.length === 0) return this.get(id)
      try {
        const { rows } = await db.query<Team>(
          `UPDATE teams SET ${set.sql} WHERE id = $1 RETURNING ${COLUMNS}`,
          [id, ...set.values],
        )
        return rows[0] ?? null
      } catch (err) {
        throw unknownCoach(err, changes.headCoachId)
      }
    },

    /**
     * Removes the team with its roster entries and games (ON DELETE CASCADE); its players'
     * legacy `team_id` is cleared (ON DELETE SET NULL).
     *
     * The players it touches are locked first, in id order, before the team's row and its
     * cascades: removing a roster entry and deleting a player lock the player before the
     * roster row, and the cascades' own order is that of their triggers' names
     * (`RI_ConstraintTrigger_a_<oid>`, compared as text), which a foreign key recreated by
     * hand, or an oid counter that gained a digit between 001 and 019, turns around: the
     * roster rows first, then the players, and a team delete deadlocked (40P01) against
     * a roster removal or a player delete.
     */
    async remove(id: number): Promise<boolean> {
      const { rowCount } = await db.query(
        `WITH locked AS (
           SELECT p.id FROM players p
            WHERE EXISTS (SELECT 1 FROM teams WHERE id = $1)
              AND p.id IN (SELECT id FROM players WHERE team_id = $1
                           UNION SELECT player_id FROM player_teams WHERE team_id = $1)
            ORDER BY p.id
              FOR NO KEY UPDATE OF p
         )
         DELETE FROM teams WHERE id = $1 AND (SELECT count(*) FROM locked) >= 0`,
        [id],
      )
      return rowCount === 1
    },
  }
}

export type TeamsRepository = ReturnType<typeof createTeamsRepository>
