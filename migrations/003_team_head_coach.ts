import type { MigrationParams } from '../src/migrate/types.js'

/** A team may name its head coach. */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('teams', 'head_coach_id', 'integer')
  await context.ensureConstraint(
    'teams',
    'teams_head_coach_id_fkey',
    'FOREIGN KEY (head_coach_id) REFERENCES coaches(id) ON DELETE SET NULL',
  )
}
