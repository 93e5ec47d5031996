import { type Static, Type } from '@sinclair/typebox'
import { Id, Nullable, PathId } from './common.js'

/** Roles a player can hold on a team; stored in `player_teams.role` (varchar(20), default 'player'). */
export const ROSTER_ROLES = ['player', 'captain', 'assistant'] as const
export type RosterRole = (typeof ROSTER_ROLES)[number]

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

/** What PUT answers: the entry, with its team. */
export const RosterEntry = Type.Object({ teamId: Id(), ...RosterItem.properties })
export type RosterEntry = Static<typeof RosterEntry>

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
    role: Type.Optional(
      Type.Unsafe<RosterRole>({
        type: 'string',
        enum: [...ROSTER_ROLES],
        description: 'Omitted: unchanged (player on join)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type PutRosterEntryBody = Static<typeof PutRosterEntryBody>
