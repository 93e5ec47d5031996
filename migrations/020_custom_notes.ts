import type { MigrationParams } from '../src/migrate/types.js'

/** Coaches' free-text notes on a player (the column the incident tripped on). */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('players', 'custom_notes', 'text')
}
