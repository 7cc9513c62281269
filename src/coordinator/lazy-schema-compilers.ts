/**
 * Fastify's own schema compilers, each schema compiled on its route's first
 * use instead of at start (issue #12).
 *
 * Fastify compiles every route's schemas when the server starts: the body,
 * params and query validators with ajv, and a fast-json-stringify serializer
 * per response status (ERROR_RESPONSES alone is six per route). That loads
 * ajv and fast-json-stringify, and keeps their generated code, in a hub that
 * may never answer most of those routes. Here the same compilers, with the
 * same options (the `ajv` server option is handed on unchanged), build the
 * same functions, only later: a request gets the validation, the 400 and the
 * serialization it got before. What changes is when a schema that cannot
 * compile says so: at its route's first request, as a 500, not at start;
 * the tests answer every route.
 *
 * The compilers are Fastify's dependencies, not ours, so they are resolved
 * from Fastify's own location: the very modules it would have loaded.
 */
import { createRequire } from 'node:module'
import type { FastifyServerOptions } from 'fastify'

type Factories = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
type ValidatorFactory = NonNullable<Factories['buildValidator']>
type SerializerFactory = NonNullable<Factories['buildSerializer']>

/** What a compiler returns for a validator: ajv's, whose `errors` Fastify reads after a failed call. */
interface Validate {
  (this: unknown, data: unknown): unknown
  errors?: unknown
}

/** `(externalSchemas, options) => (routeSchema) => fn`, the shape of both of Fastify's factories. */
type Factory<F> = (externalSchemas: unknown, options: unknown) => (routeSchema: unknown) => F

const fromFastify = createRequire(import.meta.resolve('fastify'))

/** The factory `load` returns, loaded at the first compile, each route schema compiled at its first call. */
function lazyFactory<F>(load: () => Factory<F>, wrap: (compile: () => F) => F): Factory<F> {
  let factory: Factory<F> | undefined
  return (externalSchemas, options) => {
    let compiler: ((routeSchema: unknown) => F) | undefined
    return (routeSchema) => {
      let compiled: F | undefined
      return wrap(() => (compiled ??= (compiler ??= (factory ??= load())(externalSchemas, options))(routeSchema)))
    }
  }
}

const lazyValidator = (compile: () => Validate): Validate => {
  const validate: Validate = function (this: unknown, data: unknown) {
    const inner = compile()
    const result = inner.call(this, data)
    validate.errors = inner.errors
    return result
  }
  return validate
}

const lazySerializer = (compile: () => (data: unknown) => string) => (data: unknown): string => compile()(data)

/** Fastify's `schemaController.compilersFactory`: its default compilers, compiling on first use. */
export function lazySchemaCompilers(): { buildValidator: ValidatorFactory; buildSerializer: SerializerFactory } {
  const validators = lazyFactory(() => (fromFastify('@fastify/ajv-compiler') as () => Factory<Validate>)(), lazyValidator)
  const serializers = lazyFactory(() => (fromFastify('@fastify/fast-json-stringify-compiler') as () => Factory<(data: unknown) => string>)(), lazySerializer)
  return { buildValidator: validators as unknown as ValidatorFactory, buildSerializer: serializers }
}
