import type { MigrationParams } from '../src/migrate/types.js'

/** A team's practice sessions. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('practices', {
    columns: {
      id: 'serial',
      team_id: 'integer NOT NULL',
      starts_at: 'timestamptz NOT NULL',
      ends_at: 'timestamptz NOT NULL',
      location: 'varchar(200)',
    },
    constraints: {
      practices_pkey: 'PRIMARY KEY (id)',
      practices_team_id_fkey: 'FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE CASCADE',
      practices_check: 'CHECK (ends_at > starts_at)',
    },
  })
}
