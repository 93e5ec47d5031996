import { HttpError } from './http-error.js'

/**
 * Keyset cursors: the sort key of the last row a page showed, as base64url
 * JSON. Opaque to clients; a cursor stays valid when rows are added or removed,
 * since it names a position in the order, not an offset.
 */
export type PlayerKey = [lastName: string, firstName: string, id: number]

const VERSION = 1

export function encodePlayerCursor(key: PlayerKey): string {
  return Buffer.from(JSON.stringify([VERSION, ...key]), 'utf8').toString('base64url')
}

/** Throws a 400 for anything `encodePlayerCursor` did not make. */
export function decodePlayerCursor(cursor: string): PlayerKey {
  let value: unknown
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url')
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    value = undefined
  }
  if (
    Array.isArray(value) &&
    value.length === 4 &&
    value[0] === VERSION &&
    typeof value[1] === 'string' &&
    typeof value[2] === 'string' &&
    Number.isInteger(value[3]) &&
    value[3] >= 1 &&
    value[3] <= 2_147_483_647 &&
    !`${value[1]}${value[2]}`.includes('\u0000')
  ) {
    return [value[1], value[2], value[3]]
  }
  throw new HttpError(400, 'cursor is not valid; use nextCursor from a previous page', 'BAD_CURSOR')
}
