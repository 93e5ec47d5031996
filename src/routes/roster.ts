import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { notFound } from '../lib/http-error.js'
import { createRosterRepository } from '../repositories/roster.js'
import { BODY_ERRORS, errorResponses, IdParams, NoContent } from '../schemas/common.js'
import { PutRosterEntryBody, Roster, RosterItem, RosterParams } from '../schemas/roster.js'

const tags = ['rosters']
const security = [{ bearerAuth: [] }]

/** `/teams/:id/roster`: who plays on a team, with jersey numbers unique per team (admin only). */
const rosterRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const roster = createRosterRepository(app.pg.pool)
  // Auth before validation: a caller without the token learns nothing about the input rules.
  const onRequest = app.requireAdmin

  app.get(
    '/teams/:id/roster',
    {
      onRequest,
      schema: {
        summary: 'A team’s roster by jersey number (none last), then name',
        tags,
        security,
        params: IdParams,
        response: { 200: Roster, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const items = await roster.list(request.params.id)
      if (!items) throw notFound(`team ${request.params.id}`)
      return { items }
    },
  )

  app.put(
    '/teams/:id/roster/:playerId',
    {
      onRequest,
      // The body is optional: no body joins the player with no number as a 'player'.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {}
      },
      schema: {
        summary: 'Put a player on the roster (201) or update their entry (200)',
        description:
          'Omitted fields keep their value; a new entry starts with no number and role "player". ' +
          'A jersey number another player holds on this team is a 409.',
        tags,
        security,
        params: RosterParams,
        body: PutRosterEntryBody,
        response: {
          200: RosterItem,
          201: RosterItem,
          ...errorResponses(...BODY_ERRORS, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const { entry, created } = await roster.put(
        request.params.id,
        request.params.playerId,
        request.body,
      )
      return reply.code(created ? 201 : 200).send(entry)
    },
  )

  app.delete(
    '/teams/:id/roster/:playerId',
    {
      onRequest,
      schema: {
        summary: 'Take a player off the roster',
        tags,
        security,
        params: RosterParams,
        response: { 204: NoContent, ...errorResponses(400, 404) },
      },
    },
    async (request, reply) => {
      await roster.remove(request.params.id, request.params.playerId)
      return reply.code(204).send(null)
    },
  )
}

export default rosterRoutes
