import { type Static, Type } from '@sinclair/typebox'
import { Id, Name, Nullable } from './common.js'

export const Team = Type.Object({
  id: Id(),
  name: Type.String(),
  ageGroup: Type.String(),
  season: Type.String(),
  isActive: Type.Boolean(),
  headCoachId: Nullable(Id()),
})
export type Team = Static<typeof Team>

export const TeamList = Type.Object({ items: Type.Array(Team) })

const teamFields = {
  name: Name(100, { description: 'e.g. "Westside Hawks"' }),
  ageGroup: Name(20, { description: 'e.g. "U12"' }),
  season: Name(20, { description: 'e.g. "2025-26"' }),
  isActive: Type.Boolean({ description: 'Past seasons stay, marked inactive (default true)' }),
  headCoachId: Nullable(Id({ description: 'A coach id, or null for none' })),
}

export const CreateTeamBody = Type.Object(
  {
    name: teamFields.name,
    ageGroup: teamFields.ageGroup,
    season: teamFields.season,
    isActive: Type.Optional(teamFields.isActive),
    headCoachId: Type.Optional(teamFields.headCoachId),
  },
  { additionalProperties: false },
)
export type CreateTeamBody = Static<typeof CreateTeamBody>

export const UpdateTeamBody = Type.Partial(Type.Object(teamFields), {
  additionalProperties: false,
  minProperties: 1,
})
export type UpdateTeamBody = Static<typeof UpdateTeamBody>
