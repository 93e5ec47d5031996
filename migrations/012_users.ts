import type { MigrationParams } from '../src/migrate/types.js'

/** Login accounts of the club apps. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('users', {
    columns: {
      id: 'serial',
      email: 'varchar(255) NOT NULL',
      display_name: 'varchar(200)',
      role: "varchar(20) NOT NULL DEFAULT 'viewer'",
      created_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: {
      users_pkey: 'PRIMARY KEY (id)',
      users_email_key: 'UNIQUE (email)',
      users_role_check: "CHECK (role IN ('admin', 'coach', 'viewer'))",
    },
  })
}
