/** What node-postgres puts on an error the server raised. */
interface DatabaseError {
  code: string
  constraint?: string
}

const isDatabaseError = (err: unknown): err is DatabaseError =>
  typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'

/** SQLSTATEs the repositories turn into domain errors. */
export const UNIQUE_VIOLATION = '23505'
export const FOREIGN_KEY_VIOLATION = '23503'

/**
 * True when `err` is the database refusing a row because of `constraint` (a
 * constraint or unique index name). Repositories use it to answer with a domain
 * message; the name itself never reaches a client.
 */
export function violates(err: unknown, code: string, constraint: string): boolean {
  return isDatabaseError(err) && err.code === code && err.constraint === constraint
}
