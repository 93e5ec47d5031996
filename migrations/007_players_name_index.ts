import type { MigrationParams } from '../src/migrate/types.js'

/** Player search and listing sort by last name, first name. */
export async function up({ context }: MigrationParams) {
  await context.ensureIndex('ix_players_last_first', {
    table: 'players',
    definition: '(last_name, first_name)',
  })
}
