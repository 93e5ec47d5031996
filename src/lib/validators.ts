import { type SerializerFactory, SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import { Ajv, type Options } from 'ajv'
import formatsPlugin from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv

type Validate = ReturnType<FastifySchemaCompiler<unknown>>
type Serialize = (data: unknown) => string

/**
 * Route schemas are compiled on first use instead of at `ready`: compiling the
 * ~40 validators and serializers up front was 70 ms of a 360 ms boot, spent
 * before the first probe could pass, for routes a replica may not serve for a
 * while. `warm()` compiles what is left in the background once the service is
 * ready (src/app.ts), one schema per event-loop turn, so the first request of each
 * route rarely pays for it and requests in between are never held up by more than one.
 */
export class LazyCompilers {
  readonly #pending = new Set<() => void>()
  readonly #schemas: unknown[] = []

  /** Every schema handed to these compilers (request parts and responses), compiled or not. */
  get schemas(): readonly unknown[] {
    return this.#schemas
  }

  /** Schemas registered but not compiled yet. */
  get pending(): number {
    return this.#pending.size
  }

  /**
   * Two validators, as Fastify's docs suggest for per-part options: path params
   * and query strings arrive as text and are coerced to their schema types; a JSON
   * body already has types, so it is not coerced (`null` must not turn into
   * `false`, nor `123` into `"123"`).
   */
  validatorCompiler(): FastifySchemaCompiler<unknown> {
    // allErrors stays false: with true, a crafted body can make validation costly.
    // validateSchema false: checking a schema compiles Ajv's draft-07 meta-schema, and once
    // that has run, every request in the process costs ~2 µs more CPU (a probe 6 → 8.5 µs,
    // measured with perf: V8 leaves its fast path for the `{[symbol]: …}` object that each
    // process.nextTick builds; bench/README.md). The schemas are fixed TypeBox values: the
    // test suite checks every one of them against the meta-schema instead
    // (test/routes/schemas.test.ts, via `schemas`).
    const base: Options = {
      useDefaults: true,
      removeAdditional: false,
      allErrors: false,
      validateSchema: false,
    }
    let coercing: Ajv | undefined
    let strict: Ajv | undefined
    const ajvFor = (httpPart: string | undefined) => {
      if (httpPart === 'body') {
        strict ??= addFormats(new Ajv({ ...base, coerceTypes: false }))
        return strict
      }
      coercing ??= addFormats(new Ajv({ ...base, coerceTypes: 'array' }))
      return coercing
    }
    return ({ schema, httpPart }) => {
      this.#schemas.push(schema)
      const integers = httpPart === 'body' ? [] : integerProperties(schema)
      let compiled: Validate | undefined
      const compile = () => {
        compiled ??= ajvFor(httpPart).compile(schema as object) as Validate
        this.#pending.delete(compile)
        return compiled
      }
      this.#pending.add(compile)
      // Fastify reads `.errors` off the function it was given after a `false`.
      const validate = ((data: unknown) => {
        // Ids and numbers in a path or query string are plain digits: coercion would
        // otherwise read `0x2`, `1e0`, ` 2` or `2.0` as 2 (Ajv compares with `==`).
        for (const key of integers) {
          const value = (data as Record<string, unknown> | null)?.[key]
          if (typeof value === 'string' && !/^-?[0-9]+$/.test(value)) {
            ;(validate as { errors?: unknown }).errors = [notInteger(key)]
            return false
          }
        }
        const fn = compiled ?? compile()
        const result = fn(data)
        ;(validate as { errors?: unknown }).errors = (fn as { errors?: unknown }).errors
        return result
      }) as Validate
      return validate
    }
  }

  /**
   * Fastify's own serializer (fast-json-stringify through its compiler package,
   * with the server's serializer options), built on first use.
   */
  serializerFactory(): SerializerFactory {
    const factory = SerializerSelector()
    return (externalSchemas, options) => {
      const build = factory(externalSchemas, options)
      return (route) => {
        this.#schemas.push(route.schema)
        let compiled: Serialize | undefined
        const compile = () => {
          compiled ??= build(route)
          this.#pending.delete(compile)
          return compiled
        }
        this.#pending.add(compile)
        return (data: unknown) => (compiled ?? compile())(data)
      }
    }
  }

  /** Compiles the remaining schemas, one per macrotask; resolves when none are left. */
  async warm(): Promise<void> {
    for (const compile of this.#pending) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      compile()
    }
  }
}

/** Names of the integer properties of an object schema (path params, query strings). */
function integerProperties(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties
  return Object.entries(properties ?? {})
    .filter(([, property]) => property.type === 'integer')
    .map(([key]) => key)
}

/** The error Ajv gives a value of the wrong type, so Fastify words it the same way. */
function notInteger(key: string) {
  return {
    keyword: 'type',
    instancePath: `/${key}`,
    schemaPath: `#/properties/${key}/type`,
    params: { type: 'integer' },
    message: 'must be integer',
  }
}
