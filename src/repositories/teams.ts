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

    /** Removes the team with its roster entries and games (ON DELETE CASCADE). */
    async remove(id: number): Promise<boolean> {
      const { rowCount } = await db.query('DELETE FROM teams WHERE id = $1', [id])
      return rowCount === 1
    },
  }
}

export type TeamsRepository = ReturnType<typeof createTeamsRepository>
