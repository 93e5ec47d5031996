import { type Static, Type } from '@sinclair/typebox'
import { Id, Nullable, PathId } from './common.js'

/**
 * Words separated by single spaces: no space, tab or line break (`\s`, Unicode's spaces
 * included) before, after or doubled, and no NUL (PostgreSQL text cannot hold it). A role
 * is a label the roster shows; " captain" and "captain" must not be two roles.
 */
const ROLE = '^[^\\s\\u0000]+( [^\\s\\u0000]+)*$'

export const RosterParams = Type.Object({ id: PathId(), playerId: PathId() })
export type RosterParams = Static<typeof RosterParams>

/** One player on a team's roster (CONTRACT.md's fields; the team is the one in the path). */
export const RosterItem = Type.Object({
  playerId: Id(),
  firstName: Type.String(),
  lastName: Type.String(),
  jerseyNumber: Nullable(Type.Integer()),
  // Rows written before this API may hold other texts; answer them as they are.
  role: Type.String(),
})
export type RosterItem = Static<typeof RosterItem>

export const Roster = Type.Object({
  items: Type.Array(RosterItem, {
    description: 'By jersey number (no number last), then last name, first name, player id',
  }),
})

export const PutRosterEntryBody = Type.Object(
  {
    jerseyNumber: Type.Optional(
      Nullable(
        Type.Integer({
          minimum: 0,
          maximum: 99,
          description: 'Unique per team; null clears it. Omitted: unchanged (none on join)',
        }),
      ),
    ),
    // CONTRACT.md names no roles: any words the column holds (`player_teams.role`, varchar(20)).
    role: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 20,
        pattern: ROLE,
        description:
          'For example player, captain, assistant coach: words separated by single spaces. ' +
          "Omitted: unchanged ('player' on join)",
      }),
    ),
  },
  { additionalProperties: false },
)
export type PutRosterEntryBody = Static<typeof PutRosterEntryBody>
