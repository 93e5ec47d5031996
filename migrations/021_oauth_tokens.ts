import type { MigrationParams } from '../src/migrate/types.js'

/** OAuth tokens of linked accounts, one per user and provider. */
export async function up({ context }: MigrationParams) {
  await context.ensureTable('oauth_tokens', {
    columns: {
      id: 'serial',
      user_id: 'integer NOT NULL',
      provider: 'varchar(50) NOT NULL',
      access_token: 'text NOT NULL',
      refresh_token: 'text',
      scope: 'text',
      expires_at: 'timestamptz',
      created_at: 'timestamptz NOT NULL DEFAULT now()',
      updated_at: 'timestamptz NOT NULL DEFAULT now()',
    },
    constraints: {
      oauth_tokens_pkey: 'PRIMARY KEY (id)',
      oauth_tokens_user_id_fkey: 'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE',
      oauth_tokens_user_id_provider_key: 'UNIQUE (user_id, provider)',
    },
  })
}
