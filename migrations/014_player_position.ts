import type { MigrationParams } from '../src/migrate/types.js'

/** A player's usual position. */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('players', 'position', 'varchar(20)')
}
