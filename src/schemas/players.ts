import { type Static, Type } from '@sinclair/typebox'
import { Id, Name, Nullable, Text } from './common.js'

/** Longest coaches' note accepted (the column is unbounded `text`; the body limit is the outer bound). */
export const MAX_NOTES_LENGTH = 10_000
export const DEFAULT_PAGE_SIZE = 20
export const MAX_PAGE_SIZE = 100

export const PlayerTeam = Type.Object({
  teamId: Id(),
  jerseyNumber: Nullable(Type.Integer()),
  role: Type.String(),
})

export const Player = Type.Object({
  id: Id(),
  firstName: Type.String(),
  lastName: Type.String(),
  birthDate: Nullable(Type.String({ description: 'YYYY-MM-DD' })),
  position: Nullable(Type.String()),
  customNotes: Nullable(Type.String()),
  teams: Type.Array(PlayerTeam, { description: 'Roster entries, by team id' }),
})
export type Player = Static<typeof Player>

export const PlayerPage = Type.Object({
  items: Type.Array(Player),
  nextCursor: Nullable(
    Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' }),
  ),
})
export type PlayerPage = Static<typeof PlayerPage>

export const ListPlayersQuery = Type.Object({
  teamId: Type.Optional(Id({ description: 'Only players on this team’s roster' })),
  // No NUL: PostgreSQL's text cannot hold it, so it is refused here, as in a body.
  search: Type.Optional(
    Text(100, {
      description: 'Case-insensitive substring of the first name, last name or full name',
    }),
  ),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }),
  ),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 2048, description: 'Opaque; from `nextCursor`' }),
  ),
})
export type ListPlayersQuery = Static<typeof ListPlayersQuery>

const playerFields = {
  firstName: Name(100),
  lastName: Name(100),
  birthDate: Nullable(
    Type.String({
      format: 'date',
      pattern: '^(19|20)[0-9]{2}-',
      description: 'YYYY-MM-DD, years 1900-2099',
    }),
  ),
  position: Nullable(Text(20, { description: 'Free text, e.g. "guard"' })),
  customNotes: Nullable(Text(MAX_NOTES_LENGTH, { description: 'Coaches’ notes' })),
}

export const CreatePlayerBody = Type.Object(
  {
    firstName: playerFields.firstName,
    lastName: playerFields.lastName,
    birthDate: Type.Optional(playerFields.birthDate),
    position: Type.Optional(playerFields.position),
    customNotes: Type.Optional(playerFields.customNotes),
  },
  { additionalProperties: false },
)
export type CreatePlayerBody = Static<typeof CreatePlayerBody>

export const UpdatePlayerBody = Type.Partial(Type.Object(playerFields), {
  additionalProperties: false,
  minProperties: 1,
})
export type UpdatePlayerBody = Static<typeof UpdatePlayerBody>
