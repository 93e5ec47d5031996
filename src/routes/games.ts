import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { notFound } from '../lib/http-error.js'
import { createGamesRepository } from '../repositories/games.js'
import { BODY_ERRORS, errorResponses, IdParams, NoContent } from '../schemas/common.js'
import { CreateGameBody, Game, GameList, UpdateGameBody } from '../schemas/games.js'

const tags = ['games']
const security = [{ bearerAuth: [] }]

/** A team's games: schedule and scores (admin only). */
const gamesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const games = createGamesRepository(app.pg.pool)
  // Auth before validation: a caller without the token learns nothing about the input rules.
  const onRequest = app.requireAdmin

  app.get(
    '/teams/:id/games',
    {
      onRequest,
      schema: {
        summary: 'A team’s games by start time, with scores',
        tags,
        security,
        params: IdParams,
        response: { 200: GameList, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const items = await games.listForTeam(request.params.id)
      if (!items) throw notFound(`team ${request.params.id}`)
      return { items }
    },
  )

  app.post(
    '/teams/:id/games',
    {
      onRequest,
      schema: {
        summary: 'Schedule a game for a team',
        tags,
        security,
        params: IdParams,
        body: CreateGameBody,
        response: { 201: Game, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await games.create(request.params.id, request.body)),
  )

  app.get(
    '/games/:id',
    {
      onRequest,
      schema: {
        summary: 'One game',
        tags,
        security,
        params: IdParams,
        response: { 200: Game, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const game = await games.get(request.params.id)
      if (!game) throw notFound(`game ${request.params.id}`)
      return game
    },
  )

  app.patch(
    '/games/:id',
    {
      onRequest,
      schema: {
        summary: 'Change a game, e.g. record the score (null clears a score)',
        tags,
        security,
        params: IdParams,
        body: UpdateGameBody,
        response: { 200: Game, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async (request) => {
      const game = await games.update(request.params.id, request.body)
      if (!game) throw notFound(`game ${request.params.id}`)
      return game
    },
  )

  app.delete(
    '/games/:id',
    {
      onRequest,
      schema: {
        summary: 'Delete a game',
        tags,
        security,
        params: IdParams,
        response: { 204: NoContent, ...errorResponses(400, 404) },
      },
    },
    async (request, reply) => {
      if (!(await games.remove(request.params.id))) throw notFound(`game ${request.params.id}`)
      return reply.code(204).send(null)
    },
  )
}

export default gamesRoutes
