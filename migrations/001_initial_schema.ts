import type { MigrationParams } from '../src/migrate/types.js'

/** Teams and players: the schema the Python service started from. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('teams', {
    columns: {
      id: 'serial',
      name: 'varchar(100) NOT NULL',
      age_group: 'varchar(20) NOT NULL',
      season: 'varchar(20) NOT NULL',
      created_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: { teams_pkey: 'PRIMARY KEY (id)' },
  })
  await context.ensureTable('players', {
    columns: {
      id: 'serial',
      first_name: 'varchar(100) NOT NULL',
      last_name: 'varchar(100) NOT NULL',
      birth_date: 'date',
      team_id: 'integer',
      created_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: {
      players_pkey: 'PRIMARY KEY (id)',
      players_team_id_fkey: 'FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE SET NULL',
    },
  })
}
