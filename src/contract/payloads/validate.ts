/**
 * Decoding: bytes from the bus (or a parsed value) to a typed value of a
 * payload schema, or a reason in words (`field: what was expected`), which is
 * what a rejection on `trinity/hub/errors` and an HTTP 400 say.
 *
 * The dashboard loads this module in the browser (TypeBox is plain ESM): so
 * bytes are a Uint8Array (a Node Buffer is one) read with TextDecoder, and
 * nothing here may import a Node module.
 */
import { type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string }

interface Checker<T> {
  Check(value: unknown): value is T
  Errors(value: unknown): Iterable<{ instancePath: string; message: string; params?: unknown }>
}

const compiled = new WeakMap<TSchema, Checker<unknown>>()

function checkerFor<T extends TSchema>(schema: T): Checker<Static<T>> {
  let checker = compiled.get(schema)
  if (checker === undefined) {
    checker = Compile(schema)
    compiled.set(schema, checker)
  }
  return checker as Checker<Static<T>>
}

/** The first validation error as `field: what was expected`. */
function describeErrors(schema: TSchema, value: unknown): string {
  for (const error of checkerFor(schema).Errors(value)) {
    const field = error.instancePath === '' ? '(payload)' : error.instancePath.slice(1).replaceAll('/', '.')
    const params = error.params as { additionalProperties?: string[]; allowedValue?: unknown } | undefined
    if (params?.additionalProperties !== undefined) {
      return `${field}: unknown field ${params.additionalProperties.map((k) => JSON.stringify(k)).join(', ')}`
    }
    const allowed = (error.params as { allowedValues?: unknown[] } | undefined)?.allowedValues
    return `${field}: ${error.message}${allowed === undefined ? '' : ` (${allowed.map(String).join(', ')})`}`
  }
  return 'invalid'
}

export function validate<T extends TSchema>(schema: T, value: unknown): Decoded<Static<T>> {
  if (checkerFor(schema).Check(value)) return { ok: true, value }
  return { ok: false, reason: describeErrors(schema, value) }
}

const utf8 = new TextDecoder()

export function decode<T extends TSchema>(schema: T, payload: Uint8Array | string): Decoded<Static<T>> {
  let value: unknown
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : utf8.decode(payload))
  } catch (err) {
    return { ok: false, reason: `payload is not valid JSON: ${(err as Error).message}` }
  }
  return validate(schema, value)
}
