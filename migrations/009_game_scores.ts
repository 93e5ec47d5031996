import type { MigrationParams } from '../src/migrate/types.js'

/** Final scores on games. */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('games', 'team_score', 'smallint')
  await context.ensureColumn('games', 'opponent_score', 'smallint')
}
