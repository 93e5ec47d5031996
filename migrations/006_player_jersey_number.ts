import type { MigrationParams } from '../src/migrate/types.js'

/** The legacy per-player jersey number (superseded by player_teams in 019). */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('players', 'jersey_number', 'smallint')
  await context.ensureConstraint(
    'players',
    'players_jersey_number_check',
    'CHECK (jersey_number BETWEEN 0 AND 99)',
  )
}
