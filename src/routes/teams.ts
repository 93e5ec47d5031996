import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { notFound } from '../lib/http-error.js'
import { createTeamsRepository } from '../repositories/teams.js'
import { BODY_ERRORS, errorResponses, IdParams, NoContent } from '../schemas/common.js'
import { CreateTeamBody, Team, TeamList, UpdateTeamBody } from '../schemas/teams.js'

const tags = ['teams']
const security = [{ bearerAuth: [] }]

/** `/teams`: the club's teams (admin only). */
const teamsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const teams = createTeamsRepository(app.pg.pool)
  // Auth before validation: a caller without the token learns nothing about the input rules.
  const onRequest = app.requireAdmin

  app.get(
    '/teams',
    {
      onRequest,
      schema: {
        summary: 'All teams, by id',
        tags,
        security,
        response: { 200: TeamList, ...errorResponses() },
      },
    },
    async () => ({ items: await teams.list() }),
  )

  app.post(
    '/teams',
    {
      onRequest,
      schema: {
        summary: 'Create a team',
        tags,
        security,
        body: CreateTeamBody,
        response: { 201: Team, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async (request, reply) => reply.code(201).send(await teams.create(request.body)),
  )

  app.get(
    '/teams/:id',
    {
      onRequest,
      schema: {
        summary: 'One team',
        tags,
        security,
        params: IdParams,
        response: { 200: Team, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const team = await teams.get(request.params.id)
      if (!team) throw notFound(`team ${request.params.id}`)
      return team
    },
  )

  app.patch(
    '/teams/:id',
    {
      onRequest,
      schema: {
        summary: 'Change some of a team’s fields',
        tags,
        security,
        params: IdParams,
        body: UpdateTeamBody,
        response: { 200: Team, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async (request) => {
      const team = await teams.update(request.params.id, request.body)
      if (!team) throw notFound(`team ${request.params.id}`)
      return team
    },
  )

  app.delete(
    '/teams/:id',
    {
      onRequest,
      schema: {
        summary: 'Delete a team with its roster entries and games',
        tags,
        security,
        params: IdParams,
        response: { 204: NoContent, ...errorResponses(400, 404) },
      },
    },
    async (request, reply) => {
      if (!(await teams.remove(request.params.id))) throw notFound(`team ${request.params.id}`)
      return reply.code(204).send(null)
    },
  )
}

export default teamsRoutes
