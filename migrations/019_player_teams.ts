import type { MigrationParams } from '../src/migrate/types.js'

/** Rosters: a player on several teams, with a jersey number unique per team. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('player_teams', {
    columns: {
      player_id: 'integer NOT NULL',
      team_id: 'integer NOT NULL',
      jersey_number: 'smallint',
      role: "varchar(20) NOT NULL DEFAULT 'player'",
      joined_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: {
      player_teams_pkey: 'PRIMARY KEY (player_id, team_id)',
      player_teams_player_id_fkey:
        'FOREIGN KEY (player_id) REFERENCES players(id) ON DELETE CASCADE',
      player_teams_team_id_fkey: 'FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE CASCADE',
      player_teams_jersey_number_check: 'CHECK (jersey_number BETWEEN 0 AND 99)',
    },
  })
  await context.ensureIndex('ux_player_teams_team_jersey', {
    table: 'player_teams',
    definition: '(team_id, jersey_number) WHERE jersey_number IS NOT NULL',
    unique: true,
  })
}
