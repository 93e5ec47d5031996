import type { MigrationParams } from '../src/migrate/types.js'

/** Coaches, one row per person, unique by email. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('coaches', {
    columns: {
      id: 'serial',
      full_name: 'varchar(200) NOT NULL',
      email: 'varchar(255) NOT NULL',
      phone: 'varchar(40)',
      created_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: { coaches_pkey: 'PRIMARY KEY (id)', coaches_email_key: 'UNIQUE (email)' },
  })
}
