import { STATUS_CODES } from 'node:http'
import type { LightMyRequestResponse } from 'fastify'
import { expect } from 'vitest'
import type { App } from '../../src/app.js'

/** Asserts Fastify's error shape with the status in the body matching the HTTP status. */
export function expectError(
  res: LightMyRequestResponse,
  status: number,
  message?: string | RegExp,
) {
  expect(res.statusCode, res.body).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  const body = res.json()
  expect(body).toMatchObject({ statusCode: status, error: STATUS_CODES[status] })
  expect(typeof body.message).toBe('string')
  if (message !== undefined) expect(body.message).toMatch(message)
  return body as { statusCode: number; error: string; message: string; code?: string }
}

/** Row counts of the domain tables, read straight from the database. */
export async function rowCounts(app: App) {
  const { rows } = await app.pg.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM teams)::int AS teams,
            (SELECT count(*) FROM players)::int AS players,
            (SELECT count(*) FROM player_teams)::int AS player_teams,
            (SELECT count(*) FROM games)::int AS games`,
  )
  return rows[0] as { teams: number; players: number; player_teams: number; games: number }
}

/** Ids that are not integers (plain digits): each must be a 400. */
export const BAD_IDS = ['abc', '1.5', '0x2', '1e3', ' 2', '2.0']
/**
 * Integers no row can have (below 1, above PostgreSQL's integer): unknown, so 404 (CONTRACT.md),
 * with the id named as sent (as a number, `-0` would read 0 and the last two 1e+20, 1e+23).
 */
export const IMPOSSIBLE_IDS = [
  '0',
  '-0',
  '-1',
  '2147483648',
  '99999999999999999999',
  '99999999999999999999999',
]
