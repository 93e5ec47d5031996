import type { MigrationParams } from '../src/migrate/types.js'

/** When the waiver was signed. */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('registrations', 'waiver_signed_at', 'timestamptz')
}
