import swagger from '@fastify/swagger'
import fp from 'fastify-plugin'

/**
 * The OpenAPI 3.1 document, built from the route schemas (served by src/routes/docs.ts).
 * Register before the routes: @fastify/swagger collects them as they are added.
 * 3.1 because nullable fields are JSON-schema type lists (`["integer", "null"]`).
 */
export default fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'basketball-api',
          // A 405 belongs to no operation (it answers a method a path does not have), so the
          // document says it here, once.
          description:
            'A youth basketball club’s teams, rosters, players and games. ' +
            'A method a path does not take is a 405 `METHOD_NOT_ALLOWED` with `Allow` ' +
            'listing the methods it does take. Errors have Fastify’s shape ' +
            '`{ statusCode, error, message }`, with a `code` on the service’s own 4xx answers.',
          version: '0.1.0',
        },
        components: {
          securitySchemes: {
            bearerAuth: {
              type: 'http',
              scheme: 'bearer',
              description: 'The ADMIN_TOKEN',
            },
          },
        },
        tags: [
          { name: 'teams' },
          { name: 'rosters' },
          { name: 'players' },
          { name: 'games' },
          { name: 'operations' },
        ],
      },
    })
  },
  { name: 'swagger' },
)
