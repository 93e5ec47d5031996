import type { MigrationParams } from '../src/migrate/types.js'

/** A coach may log in as one user. */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('coaches', 'user_id', 'integer')
  await context.ensureConstraint('coaches', 'coaches_user_id_key', 'UNIQUE (user_id)')
  await context.ensureConstraint(
    'coaches',
    'coaches_user_id_fkey',
    'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL',
  )
}
