import type { MigrationParams } from '../src/migrate/types.js'

/** Season registrations, one per player and season. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('registrations', {
    columns: {
      id: 'serial',
      player_id: 'integer NOT NULL',
      season: 'varchar(20) NOT NULL',
      status: "varchar(20) NOT NULL DEFAULT 'pending'",
      created_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: {
      registrations_pkey: 'PRIMARY KEY (id)',
      registrations_player_id_fkey:
        'FOREIGN KEY (player_id) REFERENCES players(id) ON DELETE CASCADE',
      registrations_status_check: "CHECK (status IN ('pending', 'active', 'withdrawn'))",
      registrations_player_id_season_key: 'UNIQUE (player_id, season)',
    },
  })
}
