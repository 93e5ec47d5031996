import type { MigrationParams } from '../src/migrate/types.js'

/** Who came to which practice. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('attendance', {
    columns: {
      practice_id: 'integer NOT NULL',
      player_id: 'integer NOT NULL',
      status: 'varchar(20) NOT NULL',
    },
    constraints: {
      attendance_pkey: 'PRIMARY KEY (practice_id, player_id)',
      attendance_practice_id_fkey:
        'FOREIGN KEY (practice_id) REFERENCES practices(id) ON DELETE CASCADE',
      attendance_player_id_fkey: 'FOREIGN KEY (player_id) REFERENCES players(id) ON DELETE CASCADE',
      attendance_status_check: "CHECK (status IN ('present', 'absent', 'excused'))",
    },
  })
}
