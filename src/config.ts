import { statSync } from 'node:fs'
import { type Static, Type } from '@sinclair/typebox'
import { Errors } from '@sinclair/typebox/errors'
import { Check, Convert, Default } from '@sinclair/typebox/value'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** One or more characters, none of them whitespace. */
const NO_WHITESPACE = '^\\S+$'
/** What a bearer token can carry in a header: visible ASCII, no whitespace, no control or zero-width character. */
const VISIBLE_ASCII = '^[!-~]+$'

/** The rule a variable broke, in words, where TypeBox's would only quote a pattern. */
const RULES: Record<string, string> = {
  LOG_LEVEL: `expected one of ${LOG_LEVELS.join(', ')}`,
  HOST: 'expected a host name or address, without spaces',
  // A bearer token cannot hold whitespace (RFC 6750's b64token), so such a value could
  // never be presented. Seen: a Secret made with `--from-file` keeps the file's last newline.
  ADMIN_TOKEN:
    'expected one or more visible ASCII characters, no whitespace (a Secret made from a file keeps its trailing newline)',
}

/** The environment the service reads, validated once at start (CONTRACT.md, "Environment"). */
export const ConfigSchema = Type.Object({
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  MIGRATION_DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ pattern: NO_WHITESPACE, default: '0.0.0.0' }),
  ADMIN_TOKEN: Type.Optional(Type.String({ pattern: VISIBLE_ASCII })),
  MIGRATE_ON_BOOT: Type.Boolean({ default: true }),
  MIGRATIONS_DIR: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: Type.Union(
    LOG_LEVELS.map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
  DATA_DIR: Type.String({ minLength: 1, default: '.data' }),
  MIGRATION_LOCK_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 600_000, default: 3000 }),
  MIGRATION_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 0 }),
  /** Longest a request's query may run (statement_timeout) or wait for an answer. */
  DATABASE_QUERY_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
  HEALTH_CHECK_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 2000 }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 25_000 }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 10_485_760, default: 65_536 }),
})

export type Config = Static<typeof ConfigSchema>

/** Thrown when the environment does not validate; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

export interface LoadConfigOptions {
  /**
   * `false` for tools that serve no admin route (the migrate CLI): ADMIN_TOKEN is
   * then optional even with a DATABASE_URL. The server keeps the default, `true`.
   */
  requireAdminToken?: boolean
  /**
   * The variables the caller reads (the migrate CLI reads a few); the others are not
   * looked at, so a value meant for the server alone cannot stop the tool. All by default.
   */
  only?: ReadonlyArray<keyof Config>
}

/**
 * Validates `env` against {@link ConfigSchema}. Without a DATABASE_URL the service
 * runs an embedded PostgreSQL and may generate its own admin token; with one, an
 * ADMIN_TOKEN is required.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadConfigOptions = {},
): Config {
  // TypeBox's own value functions, not a second validator: fewer modules to load at boot.
  const read = new Set<string>(options.only ?? Object.keys(ConfigSchema.properties))
  const given = Object.fromEntries(
    Object.keys(ConfigSchema.properties).flatMap((key) =>
      env[key] === undefined || !read.has(key) ? [] : [[key, env[key]]],
    ),
  )
  // Integers as plain digits: TypeBox's conversion would read `6e5` as 6 and `4200.7` as 4200.
  for (const [key, value] of Object.entries(given)) {
    const schema = ConfigSchema.properties[key as keyof Config] as { type?: unknown }
    if (schema.type === 'integer' && !/^-?[0-9]+$/.test(String(value))) {
      throw new ConfigError(`invalid configuration: ${key}: expected integer`)
    }
  }
  const candidate = Convert(ConfigSchema, Default(ConfigSchema, given))
  if (!Check(ConfigSchema, candidate)) {
    const error = Errors(ConfigSchema, candidate).First()
    const name = error?.path.replace(/^\//, '') ?? 'environment'
    const rule = RULES[name] ?? error?.message.replace(/^Expected/, 'expected') ?? 'not valid'
    // The rule, never the value: a bad DATABASE_URL may hold a password.
    throw new ConfigError(`invalid configuration: ${name}: ${rule}`)
  }
  const config: Config = candidate
  for (const key of ['DATABASE_URL', 'MIGRATION_DATABASE_URL'] as const) {
    const url = config[key]
    if (url !== undefined && !URL.canParse(url)) {
      throw new ConfigError(
        `invalid configuration: ${key}: not a valid URL (check the port, and that the user name and password are percent-encoded: @ as %40, / as %2F, % as %25, : as %3A, # as %23, ? as %3F)`,
      )
    }
  }
  if (config.MIGRATIONS_DIR !== undefined && !isDirectory(config.MIGRATIONS_DIR)) {
    throw new ConfigError(`invalid configuration: MIGRATIONS_DIR: not a directory`)
  }
  if (
    options.requireAdminToken !== false &&
    config.DATABASE_URL !== undefined &&
    config.ADMIN_TOKEN === undefined
  ) {
    throw new ConfigError(
      'invalid configuration: ADMIN_TOKEN is required when DATABASE_URL is set (admin routes need a bearer token)',
    )
  }
  return config
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}
