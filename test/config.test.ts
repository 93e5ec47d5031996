import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'

describe('configuration from the environment', () => {
  it('applies the contract defaults', () => {
    expect(loadConfig({})).toMatchObject({
      PORT: 3000,
      HOST: '0.0.0.0',
      MIGRATE_ON_BOOT: true,
      LOG_LEVEL: 'info',
      DATA_DIR: '.data',
      MIGRATION_STATEMENT_TIMEOUT_MS: 0,
    })
  })

  it('coerces strings the way operators write them', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5432/club',
      ADMIN_TOKEN: 'x'.repeat(20),
      PORT: '0',
      MIGRATE_ON_BOOT: 'false',
      LOG_LEVEL: 'warn',
    })
    expect(config).toMatchObject({ PORT: 0, MIGRATE_ON_BOOT: false, LOG_LEVEL: 'warn' })
  })

  it.each([
    [{ PORT: 'abc' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ MIGRATE_ON_BOOT: 'sometimes' }, /MIGRATE_ON_BOOT/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ MIGRATION_STATEMENT_TIMEOUT_MS: '-1' }, /MIGRATION_STATEMENT_TIMEOUT_MS/],
    // Converted, these would be 6 (ms, not 600,000), 4205 and 4200: refused instead.
    [{ MIGRATION_STATEMENT_TIMEOUT_MS: '6e5' }, /MIGRATION_STATEMENT_TIMEOUT_MS: expected integer/],
    [{ PORT: '4205.9' }, /PORT: expected integer/],
    [{ PORT: '0x1068' }, /PORT: expected integer/],
    [{ PORT: ' 3000' }, /PORT: expected integer/],
    [
      { DATABASE_URL: 'postgres://u:hunter2@h:5543x/db', ADMIN_TOKEN: 't' },
      /DATABASE_URL: not a valid URL/,
    ],
    [{ MIGRATION_DATABASE_URL: 'postgres://u@h:99999999/db' }, /MIGRATION_DATABASE_URL/],
    [{ MIGRATIONS_DIR: '/nonexistent/migrations' }, /MIGRATIONS_DIR: not a directory/],
    [{ DATABASE_URL: 'mysql://u:secret@h/db', ADMIN_TOKEN: 't' }, /DATABASE_URL/],
    [{ DATABASE_URL: 'postgres://u:secret@h/db' }, /ADMIN_TOKEN is required/],
    // A bearer token with whitespace could never be presented: every admin request a 401.
    [{ ADMIN_TOKEN: 'tok-0123456789abcdef\n' }, /ADMIN_TOKEN: .*no whitespace .*trailing newline/],
    [{ ADMIN_TOKEN: 'two words' }, /ADMIN_TOKEN: .*no whitespace/],
    [{ ADMIN_TOKEN: 'zero\u200bwidth' }, /ADMIN_TOKEN: expected one or more visible ASCII/],
    [{ ADMIN_TOKEN: 'ctrl\u0001char' }, /ADMIN_TOKEN: expected one or more visible ASCII/],
    [{ ADMIN_TOKEN: '' }, /ADMIN_TOKEN/],
    [{ HOST: ' ' }, /HOST: expected a host name or address, without spaces/],
    [{ HOST: '' }, /HOST/],
  ])('rejects %o with a message naming the variable', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    expect(() => loadConfig(env)).toThrow(name)
  })

  it.each(['mysql://u:hunter2@h/db', 'postgres://u:hunter2@h:5543x/db'])(
    'never echoes a password from DATABASE_URL in its error (%s)',
    (url) => {
      try {
        loadConfig({ DATABASE_URL: url, ADMIN_TOKEN: 't' })
        expect.unreachable()
      } catch (err) {
        expect((err as Error).message).not.toContain('hunter2')
      }
    },
  )

  it('hints at percent-encoding when a URL does not parse', () => {
    expect(() =>
      loadConfig({ DATABASE_URL: 'postgres://u2:p@ss:w/rd%@127.0.0.1:5512/d2', ADMIN_TOKEN: 't' }),
    ).toThrow(/DATABASE_URL: not a valid URL .*percent-encoded: @ as %40, \/ as %2F/)
  })

  it('with `only`, reads those variables and ignores the others', () => {
    const env = { PORT: 'abc', LOG_LEVEL: 'verbose', ADMIN_TOKEN: '', SHUTDOWN_TIMEOUT_MS: '4000' }
    const config = loadConfig(env, { only: ['SHUTDOWN_TIMEOUT_MS'], requireAdminToken: false })
    expect(config).toMatchObject({ SHUTDOWN_TIMEOUT_MS: 4000, PORT: 3000, LOG_LEVEL: 'info' })
    expect(config.ADMIN_TOKEN).toBeUndefined()
    expect(() =>
      loadConfig({ SHUTDOWN_TIMEOUT_MS: 'soon' }, { only: ['SHUTDOWN_TIMEOUT_MS'] }),
    ).toThrow(/SHUTDOWN_TIMEOUT_MS/)
  })

  it('takes an existing MIGRATIONS_DIR and IPv6 hosts in URLs', () => {
    const config = loadConfig({
      MIGRATIONS_DIR: import.meta.dirname,
      DATABASE_URL: 'postgresql://u:p@[::1]:5432/club?sslmode=disable',
      ADMIN_TOKEN: 't',
    })
    expect(config.MIGRATIONS_DIR).toBe(import.meta.dirname)
  })
})
