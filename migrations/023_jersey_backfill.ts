import type { MigrationParams } from '../src/migrate/types.js'

/**
 * Copies each player's legacy team and jersey number into player_teams.
 *
 * Legacy numbers are not unique per team (two Hawks wear 23). Per team and
 * number the lowest player id keeps it; the others join with a null jersey, and
 * the ledger names them. A number an existing roster row already holds stays
 * with that row, and an existing roster row is never overwritten.
 */
export async function up({ context }: MigrationParams) {
  const { rows } = await context.query<{
    player_id: number
    team_id: number
    jersey_number: number | null
    kept_by: number | null
  }>(
    `WITH candidates AS (
       SELECT p.id AS player_id, p.team_id, p.jersey_number,
              row_number() OVER (PARTITION BY p.team_id, p.jersey_number ORDER BY p.id) AS rank,
              first_value(p.id) OVER (PARTITION BY p.team_id, p.jersey_number ORDER BY p.id) AS first_id
         FROM players p
        WHERE p.team_id IS NOT NULL
          AND NOT EXISTS (
                SELECT 1 FROM player_teams pt WHERE pt.player_id = p.id AND pt.team_id = p.team_id)
     ),
     decided AS (
       SELECT c.player_id, c.team_id, c.jersey_number,
              CASE
                WHEN c.jersey_number IS NULL THEN NULL
                WHEN holder.player_id IS NOT NULL THEN holder.player_id
                WHEN c.rank > 1 THEN c.first_id
              END AS kept_by
         FROM candidates c
         LEFT JOIN player_teams holder
           ON holder.team_id = c.team_id AND holder.jersey_number = c.jersey_number
     ),
     inserted AS (
       INSERT INTO player_teams (player_id, team_id, jersey_number)
       SELECT player_id, team_id, CASE WHEN kept_by IS NULL THEN jersey_number END
         FROM decided
        ORDER BY player_id
       ON CONFLICT (player_id, team_id) DO NOTHING
       RETURNING player_id, team_id
     )
     SELECT d.player_id, d.team_id, d.jersey_number, d.kept_by
       FROM decided d JOIN inserted i USING (player_id, team_id)
      ORDER BY d.player_id`,
  )
  const lost = rows
    .filter((r) => r.kept_by !== null)
    .map((r) => ({
      playerId: r.player_id,
      teamId: r.team_id,
      jerseyNumber: r.jersey_number,
      keptBy: r.kept_by,
    }))
  context.record({
    object: 'player_teams',
    action: rows.length > 0 ? 'inserted' : 'unchanged',
    rows: rows.length,
  })
  if (lost.length > 0) {
    context.record({
      object: 'player_teams.jersey_number',
      action: 'cleared',
      rows: lost.length,
      detail: { reason: 'number already worn on that team', players: lost },
    })
  }
}
