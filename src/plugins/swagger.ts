import swagger from '@fastify/swagger'
import fp from 'fastify-plugin'

/**
 * The OpenAPI 3.1 document, built from the route schemas, at `GET /docs/json`.
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
          description: 'A youth basketball club’s teams, rosters, players and games.',
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

    app.get('/docs/json', { config: { alwaysAvailable: true }, schema: { hide: true } }, async () =>
      app.swagger(),
    )
  },
  { name: 'swagger' },
)
