/**
 * The old Alembic chain's merge point. It changes nothing; it is kept so the
 * numbering matches production.
 */
export async function up() {}

export async function down() {}
