/** An error that carries its HTTP status; the error handler answers it in Fastify's shape. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly code?: string,
    /** Response headers that go with the answer (a 415's `Accept-Encoding`). */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export const notFound = (what: string) => new HttpError(404, `${what} not found`, 'NOT_FOUND')
export const conflict = (message: string) => new HttpError(409, message, 'CONFLICT')
