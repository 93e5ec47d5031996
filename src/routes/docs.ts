import type { FastifyInstance } from 'fastify'

/**
 * `GET /docs/json`: the OpenAPI document (src/plugins/swagger.ts). A route like the others,
 * registered after the metrics and method plugins, so that it is counted and a wrong
 * method on it is a 405.
 */
export default async function docsRoutes(app: FastifyInstance) {
  app.get('/docs/json', { config: { alwaysAvailable: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  )
}
