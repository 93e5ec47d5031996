import { type Static, Type } from '@sinclair/typebox'
import { Id, Name, Nullable, Text } from './common.js'

export const MAX_SCORE = 999

export const Game = Type.Object({
  id: Id(),
  teamId: Id(),
  opponent: Type.String(),
  startsAt: Type.String({ format: 'date-time' }),
  location: Nullable(Type.String()),
  isHome: Type.Boolean(),
  teamScore: Nullable(Type.Integer()),
  opponentScore: Nullable(Type.Integer()),
})
export type Game = Static<typeof Game>

export const GameList = Type.Object({
  items: Type.Array(Game, { description: 'By start time' }),
})

const Score = Nullable(Type.Integer({ minimum: 0, maximum: MAX_SCORE }))

const gameFields = {
  opponent: Name(200),
  startsAt: Type.String({
    format: 'date-time',
    // A year from 1000 and no leap second (`23:59:60`, which RFC 3339 allows and
    // PostgreSQL would store as the next day's 00:00:00).
    pattern: '^[12][0-9]{3}-.{12}(?!60)',
    description: 'RFC 3339 with a time zone, e.g. 2025-09-02T18:00:00Z; no leap second',
  }),
  location: Nullable(Text(200)),
  isHome: Type.Boolean({ description: 'Default true' }),
  teamScore: Score,
  opponentScore: Score,
}

export const CreateGameBody = Type.Object(
  {
    opponent: gameFields.opponent,
    startsAt: gameFields.startsAt,
    location: Type.Optional(gameFields.location),
    isHome: Type.Optional(gameFields.isHome),
    teamScore: Type.Optional(gameFields.teamScore),
    opponentScore: Type.Optional(gameFields.opponentScore),
  },
  { additionalProperties: false },
)
export type CreateGameBody = Static<typeof CreateGameBody>

export const UpdateGameBody = Type.Partial(Type.Object(gameFields), {
  additionalProperties: false,
  minProperties: 1,
})
export type UpdateGameBody = Static<typeof UpdateGameBody>
