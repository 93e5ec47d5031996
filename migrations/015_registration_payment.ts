import type { MigrationParams } from '../src/migrate/types.js'

/** What a registration cost and when it was paid. */
export async function up({ context }: MigrationParams) {
  await context.ensureColumn('registrations', 'amount_cents', 'integer')
  await context.ensureConstraint(
    'registrations',
    'registrations_amount_cents_check',
    'CHECK (amount_cents >= 0)',
  )
  await context.ensureColumn('registrations', 'paid_at', 'timestamptz')
}
