import type { RunError } from './types.js'

/** Thrown when a run is asked to stop (SIGTERM) before the next migration starts. */
export class StopRequestedError extends Error {
  override name = 'StopRequestedError'
  readonly code = 'STOP_REQUESTED'
}

/** `down` while the ledger lists migrations this build does not know (a newer release's). */
export class RevertRefusedError extends Error {
  override name = 'RevertRefusedError'
  constructor(readonly unknown: string[]) {
    super(
      `refusing to revert: the ledger lists migrations this build does not know (${unknown.join(', ')}); revert them with the build that has them`,
    )
  }
}

/** A migration module that cannot be used (it does not import, or has no `up()`): names it. */
export class MigrationLoadError extends Error {
  override name = 'MigrationLoadError'
  constructor(
    readonly migration: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`migration ${migration} ${message}`, options)
  }
}

/**
 * A SQLSTATE: five digits or upper-case letters, at least one a digit (`42P01`, `XX000`).
 * The digit tells it from a Node error code of five letters (`EPIPE`, `EPERM`).
 */
export const isSqlState = (code: unknown): code is string =>
  typeof code === 'string' && /^(?=.*[0-9])[0-9A-Z]{5}$/.test(code)

/** SQLSTATE `query_canceled`: `pg_cancel_backend()` (a stop's cancel) or `statement_timeout`. */
export const QUERY_CANCELED = '57014'

/** SQLSTATE `lock_not_available`: a statement waited longer than `lock_timeout`. */
export const LOCK_NOT_AVAILABLE = '55P03'

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '3D000', // invalid_catalog_name: the database is not there (yet)
  '28P01', // invalid_password: the credentials, not a migration (OPERATIONS.md)
  '28000', // invalid_authorization_specification: no such role, or pg_hba.conf refuses it
])

/** The error a migration threw, without umzug's MigrationError wrapper. */
export function rootCause(err: unknown): unknown {
  let e = err
  while (e instanceof Error && e.name === 'MigrationError' && e.cause) e = e.cause
  return e
}

export function errorCode(err: unknown): string | null {
  const code = (rootCause(err) as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : null
}

/** True when the error says the database cannot be reached, rather than that a migration is wrong. */
export function isConnectionError(err: unknown): boolean {
  const cause = rootCause(err)
  const code = errorCode(cause)
  if (code && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true
  const message = cause instanceof Error ? cause.message : ''
  // 'timeout expired': pg.Client's connectionTimeoutMillis (a host that accepts and never answers);
  // 'timeout exceeded when trying to connect': pg.Pool found no free connection in time (every
  // one busy or stuck); 'Query read timeout': query_timeout, the server stopped answering;
  // 'connection stopped answering': the same found by the request pool's stall guard.
  return /Connection terminated|connection timeout|timeout expired|timeout exceeded when trying to connect|Query read timeout|connection stopped answering|Client has encountered a connection error/i.test(
    message,
  )
}

/** PostgreSQL's DETAIL of an error (node-postgres keeps it apart from the message), if any. */
export function errorDetail(err: unknown): string | null {
  const detail = (rootCause(err) as { detail?: unknown } | null)?.detail
  return typeof detail === 'string' && detail !== '' ? detail : null
}

export function toRunError(err: unknown, migration: string | null): RunError {
  const cause = rootCause(err)
  return {
    migration: migration ?? (cause instanceof MigrationLoadError ? cause.migration : null),
    message: cause instanceof Error ? cause.message : String(cause),
    code: errorCode(cause),
    detail: errorDetail(cause),
  }
}
