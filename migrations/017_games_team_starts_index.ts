import type { MigrationParams } from '../src/migrate/types.js'

/** A team's schedule in time order. */
export async function up({ context }: MigrationParams) {
  await context.ensureIndex('ix_games_team_starts', {
    table: 'games',
    definition: '(team_id, starts_at)',
  })
}
