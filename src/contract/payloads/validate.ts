/**
 * Decoding: bytes from the bus (or a parsed value) to a typed value of a
 * payload schema, or a reason in words (`field: what was expected`), which is
 * what a rejection on `trinity/hub/errors` and an HTTP 400 say.
 *
 * Nesting depth is checked right after JSON.parse, before the schema or
 * anything else looks at the value (issue #14): V8 parses a 5,000-deep array
 * without trouble, but JSON.stringify and structuredClone of it overflow the
 * stack, so such a value must never become a record.
 *
 * The dashboard loads this module in the browser (TypeBox is plain ESM): so
 * bytes are a Uint8Array (a Node Buffer is one) read with TextDecoder, and
 * nothing here may import a Node module.
 */
import type { Static, TSchema } from 'typebox'
import type { Compile } from 'typebox/compile'

/** `tooDeep`: refused for its nesting (`limits.maxDepth`), not its shape. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string; tooDeep?: true }

/** What validation errors say (TypeBox's): a JSON pointer, the words, and the keyword's details. */
export interface SchemaError {
  readonly keyword: string
  readonly instancePath: string
  readonly message: string
  readonly params?: unknown
  readonly schemaPath?: string
}

interface Checker<T> {
  Check(value: unknown): value is T
  /** Asked only after a failed Check. */
  Errors(value: unknown): Iterable<SchemaError>
}

type Compiler = (schema: TSchema) => Checker<unknown>

/**
 * TypeBox's Compile, loaded at its first use (issue #12: TypeBox's builders
 * and compiler were about 8 MB of an idle hub's 83). The Node build ships
 * every contract schema with its check already generated
 * (scripts/freeze-schemas.mjs, with TypeBox's own code generator), so a hub
 * loads TypeBox only to say why the first invalid payload is invalid, or for
 * a schema the build did not see.
 * Node loads it synchronously (an ES module by `require`, Node 20.19 and
 * later); the dashboard's pages hand in the Compile they import
 * (`useCompiler`), as a browser has no `require`.
 */
let compiler: Compiler | undefined

export function useCompiler(compile: typeof Compile): void {
  compiler = compile
}

interface NodeModuleApi { createRequire(url: string): (id: string) => unknown }

function typeboxCompile(): Compiler {
  if (compiler === undefined) {
    const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    const nodeModule = process?.getBuiltinModule?.('node:module') as NodeModuleApi | undefined
    if (nodeModule === undefined) throw new Error('validate.ts: no schema compiler here; call useCompiler(Compile) first')
    useCompiler((nodeModule.createRequire(import.meta.url)('typebox/compile') as { Compile: typeof Compile }).Compile)
  }
  return compiler as Compiler
}

const compiled = new WeakMap<TSchema, Checker<unknown>>()

/**
 * Called by the modules scripts/freeze-schemas.mjs writes, once per schema:
 * the check TypeBox generated for `schema` at build time. Its errors, when
 * asked for, still come from TypeBox's Compile of the same schema.
 * @public (called from the built modules only)
 */
export function usePrecompiled(schema: TSchema, check: (value: unknown) => boolean): void {
  let full: Checker<unknown> | undefined
  compiled.set(schema, {
    Check: check as Checker<unknown>['Check'],
    Errors: (value) => (full ??= typeboxCompile()(schema)).Errors(value),
  })
}

/** A schema's checker: the one generated at build time, or TypeBox's Compile of it (once). */
export function schemaChecker<T extends TSchema>(schema: T): Checker<Static<T>> {
  let checker = compiled.get(schema)
  if (checker === undefined) {
    checker = typeboxCompile()(schema)
    compiled.set(schema, checker)
  }
  return checker as Checker<Static<T>>
}

/** The first validation error as `field: what was expected`. */
function describeErrors(schema: TSchema, value: unknown): string {
  for (const error of schemaChecker(schema).Errors(value)) {
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
  if (schemaChecker(schema).Check(value)) return { ok: true, value }
  return { ok: false, reason: describeErrors(schema, value) }
}

/**
 * The first field of `value` (a top-level key of an object, else
 * `(payload)`) that nests deeper than `maxDepth` levels, `[]` and `{}`
 * counting one; null when none does. Iterative, and it never looks below
 * maxDepth + 1, so the check itself cannot overflow the stack. Every payload
 * the hub reads goes through it: nothing is allocated for fields that are
 * not containers (issue #12).
 */
export function tooDeepField(value: unknown, maxDepth: number): string | null {
  if (!isContainer(value)) return null
  if (Array.isArray(value)) return nestsDeeper(value, maxDepth) ? '(payload)' : null
  for (const field in value) {
    if (!Object.hasOwn(value, field)) continue
    const root = value[field]
    if (isContainer(root) && nestsDeeper(root, maxDepth)) return field
  }
  return null
}

/** Whether `root` (a container, at depth 1) holds a container deeper than `maxDepth`. */
function nestsDeeper(root: Record<string, unknown> | unknown[], maxDepth: number): boolean {
  const nodes: (Record<string, unknown> | unknown[])[] = [root]
  const depths: number[] = [1]
  for (let node = nodes.pop(); node !== undefined; node = nodes.pop()) {
    const depth = depths.pop() as number
    if (depth > maxDepth) return true
    if (Array.isArray(node)) {
      for (const child of node) if (isContainer(child)) { nodes.push(child); depths.push(depth + 1) }
    } else {
      for (const key in node) {
        if (!Object.hasOwn(node, key)) continue
        const child = node[key]
        if (isContainer(child)) { nodes.push(child); depths.push(depth + 1) }
      }
    }
  }
  return false
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === 'object' && value !== null
}

/** The reason a too-deep field is refused with, over HTTP and MQTT alike. */
export function tooDeepReason(field: string, maxDepth: number): string {
  return `${field}: nests deeper than ${maxDepth} levels (limits.maxDepth)`
}

/** `maxDepth`: refuse values nesting deeper (what a client sends the hub); absent: no bound (what the hub sends). */
const utf8 = new TextDecoder()

export function decode<T extends TSchema>(schema: T, payload: Uint8Array | string, bounds: { maxDepth?: number } = {}): Decoded<Static<T>> {
  let value: unknown
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : utf8.decode(payload))
  } catch (err) {
    return { ok: false, reason: `payload is not valid JSON: ${(err as Error).message}` }
  }
  if (bounds.maxDepth !== undefined) {
    const field = tooDeepField(value, bounds.maxDepth)
    if (field !== null) return { ok: false, reason: tooDeepReason(field, bounds.maxDepth), tooDeep: true }
  }
  return validate(schema, value)
}
