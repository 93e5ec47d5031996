import type { MigrationParams } from '../src/migrate/types.js'

/** A team's schedule. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('games', {
    columns: {
      id: 'serial',
      team_id: 'integer NOT NULL',
      opponent: 'varchar(200) NOT NULL',
      starts_at: 'timestamptz NOT NULL',
      location: 'varchar(200)',
      is_home: 'boolean NOT NULL DEFAULT true',
      created_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: {
      games_pkey: 'PRIMARY KEY (id)',
      games_team_id_fkey: 'FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE CASCADE',
    },
  })
}
