import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { notFound } from '../lib/http-error.js'
import { createPlayersRepository } from '../repositories/players.js'
import { BODY_ERRORS, errorResponses, IdParams, NoContent } from '../schemas/common.js'
import {
  CreatePlayerBody,
  ListPlayersQuery,
  Player,
  PlayerPage,
  UpdatePlayerBody,
} from '../schemas/players.js'

const tags = ['players']
const security = [{ bearerAuth: [] }]

/** `/players`: the club's players with their roster entries (admin only). */
const playersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const players = createPlayersRepository(app.pg.pool)
  // Auth before validation: a caller without the token learns nothing about the input rules.
  const onRequest = app.requireAdmin

  app.get(
    '/players',
    {
      onRequest,
      schema: {
        summary: 'Players by last name, first name, id; keyset-paginated',
        tags,
        security,
        querystring: ListPlayersQuery,
        response: { 200: PlayerPage, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const page = await players.list(request.query)
      if (!page) throw notFound(`team ${request.query.teamId}`)
      return page
    },
  )

  app.post(
    '/players',
    {
      onRequest,
      schema: {
        summary: 'Create a player',
        tags,
        security,
        body: CreatePlayerBody,
        response: { 201: Player, ...errorResponses(...BODY_ERRORS) },
      },
    },
    async (request, reply) => reply.code(201).send(await players.create(request.body)),
  )

  app.get(
    '/players/:id',
    {
      onRequest,
      schema: {
        summary: 'One player with their roster entries',
        tags,
        security,
        params: IdParams,
        response: { 200: Player, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const player = await players.get(request.params.id)
      if (!player) throw notFound(`player ${request.params.id}`)
      return player
    },
  )

  app.patch(
    '/players/:id',
    {
      onRequest,
      schema: {
        summary: 'Change some of a player’s fields (null clears an optional one)',
        tags,
        security,
        params: IdParams,
        body: UpdatePlayerBody,
        response: { 200: Player, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async (request) => {
      const player = await players.update(request.params.id, request.body)
      if (!player) throw notFound(`player ${request.params.id}`)
      return player
    },
  )

  app.delete(
    '/players/:id',
    {
      onRequest,
      schema: {
        summary: 'Delete a player with their roster entries, guardians and registrations',
        tags,
        security,
        params: IdParams,
        response: { 204: NoContent, ...errorResponses(400, 404) },
      },
    },
    async (request, reply) => {
      if (!(await players.remove(request.params.id))) throw notFound(`player ${request.params.id}`)
      return reply.code(204).send(null)
    },
  )
}

export default playersRoutes
