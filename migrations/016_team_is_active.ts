import type { MigrationParams } from '../src/migrate/types.js'

/** Past seasons stay, marked inactive. */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('teams', 'is_active', 'boolean NOT NULL DEFAULT true')
}
