import type { MigrationParams } from '../src/migrate/types.js'

/** A player's parents and guardians. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('guardians', {
    columns: {
      id: 'serial',
      player_id: 'integer NOT NULL',
      full_name: 'varchar(200) NOT NULL',
      email: 'varchar(255)',
      phone: 'varchar(40)',
      relationship: 'varchar(40)',
    },
    constraints: {
      guardians_pkey: 'PRIMARY KEY (id)',
      guardians_player_id_fkey: 'FOREIGN KEY (player_id) REFERENCES players(id) ON DELETE CASCADE',
    },
  })
}
