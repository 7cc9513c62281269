#!/usr/bin/env node
// Build step, after tsc (npm run build): the Node build's schema modules become
// plain data with their checks already generated, so no Trinity process loads
// TypeBox to build or compile a schema (issue #12: TypeBox's builders and
// compiler were about 8 MB of an idle hub's 83, BENCHMARKS.md).
//
// A schema module is one whose compiled form imports TypeBox's builders
// (`import Type from 'typebox'`); it must export data only (schemas and
// constants), so its functions live elsewhere. For each one:
//  - tsc's output is kept beside it as `X.live.js` (its imports of other
//    schema modules pointed at their live copies), and evaluated here;
//  - `X.js` is written anew: every export as a literal (TypeBox's
//    non-enumerable `~kind`, `~optional`… included), and for every schema
//    among them (an export, or a member of an exported object) the check
//    TypeBox's own code generator (`Code` from typebox/compile) writes,
//    registered with validate.ts's `usePrecompiled`;
//  - the result is read back and compared with the live values, property by
//    property, and each schema's generated code with that of its live twin:
//    any difference fails the build.
// Error messages still come from TypeBox, loaded on the first invalid value
// (src/contract/payloads/validate.ts). Types (.d.ts) are tsc's, untouched.
//
// The build thaws first (`freeze-schemas.mjs thaw`, before tsc): every
// frozen module goes back to tsc's own output, so what tsc's incremental
// build believes it wrote is what is there, and a schema module it does not
// emit again is frozen again anyway, from its own output, after it.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { Code } from 'typebox/compile'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')
/** The Node build's product trees (the dashboard's copy, dist/web/static, runs TypeBox in the browser). */
const TREES = ['src', 'broker', 'bridges']
const VALIDATE = join(DIST, 'src/contract/payloads/validate.js')
const MARKER = '// Frozen by scripts/freeze-schemas.mjs'
const LIVE = '.live.js'

const TYPEBOX_BUILDERS = /^import\s+(?!type\b)[^;]*?\bfrom\s+['"]typebox['"];?\s*$/m
const ANY_TYPEBOX = /^import\s+(?!type\b)[^;]*?\bfrom\s+['"](typebox(?:\/[\w-]+)?)['"]/gm

class FreezeError extends Error {}
const fail = (message) => { throw new FreezeError(message) }

function jsFiles(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? jsFiles(path) : path.endsWith('.js') ? [path] : []
  })
}

/** Every compiled module of the product trees, live copies among them. */
const productFiles = () => TREES.flatMap((tree) => jsFiles(join(DIST, tree)))

const liveOf = (file) => file.replace(/\.js$/, LIVE)
const sourceOf = (file) => relative(DIST, file).replace(/\.js$/, '.ts')

/** Before tsc: every frozen module back to tsc's output (its live copy, with its imports as tsc wrote them). */
function thaw() {
  for (const live of productFiles().filter((f) => f.endsWith(LIVE))) {
    writeFileSync(live.slice(0, -LIVE.length) + '.js', readFileSync(live, 'utf8').replace(/(\bfrom\s+|\bimport\s+)(['"])(\.\.?\/[^'"]+?)\.live\.js\2/g, '$1$2$3.js$2'))
    rmSync(live)
  }
}

/** After tsc: every schema module of the build (tsc's output importing TypeBox's builders). */
function schemaModules() {
  const modules = []
  for (const file of productFiles().filter((f) => !f.endsWith(LIVE))) {
    if (!existsSync(join(ROOT, sourceOf(file)))) continue // an earlier build's output of a source since removed
    const text = readFileSync(file, 'utf8')
    if (text.startsWith(MARKER)) fail(`${relative(ROOT, file)} is frozen already: build with npm run build, which thaws first`)
    if (TYPEBOX_BUILDERS.test(text)) modules.push(file)
  }
  return modules
}

/** Keeps tsc's output as the live copy, its imports of other schema modules pointed at their live copies (the live graph never reads a frozen file). */
function keepLive(file, schemaModules) {
  const text = readFileSync(file, 'utf8').replace(/(\bfrom\s+|\bimport\s+)(['"])(\.\.?\/[^'"]+?)(?<!\.live)\.js\2/g, (whole, lead, quote, spec) =>
    schemaModules.has(resolve(dirname(file), `${spec}.js`)) ? `${lead}${quote}${spec}${LIVE}${quote}` : whole)
  writeFileSync(liveOf(file), text)
}

/** A JavaScript literal for `value`: plain data only, non-enumerable properties kept as such. */
function literal(value, where, stack = []) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value) || Object.is(value, -0)) fail(`${where}: ${value} cannot be written as data`)
      return String(value)
    case 'object':
      break
    default:
      fail(`${where}: a ${typeof value} cannot be written as data (a schema module exports data only: move functions to another module)`)
  }
  if (value === null) return 'null'
  if (stack.includes(value)) fail(`${where}: refers to itself`)
  const inner = [...stack, value]
  if (Array.isArray(value)) {
    const extra = Reflect.ownKeys(value).filter((k) => k !== 'length' && !(typeof k === 'string' && /^\d+$/.test(k)))
    if (extra.length > 0) fail(`${where}: an array with properties ${extra.map(String).join(', ')}`)
    return `[${Array.from(value, (item, i) => literal(item, `${where}[${i}]`, inner)).join(', ')}]`
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) fail(`${where}: a ${value.constructor?.name ?? 'null-prototype object'} cannot be written as data`)
  const shown = []
  const hidden = []
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === 'symbol') fail(`${where}: symbol key ${String(key)}`)
    const descriptor = Object.getOwnPropertyDescriptor(value, key)
    if (!('value' in descriptor)) fail(`${where}.${key}: an accessor`)
    if (!descriptor.enumerable && !(descriptor.writable && descriptor.configurable)) fail(`${where}.${key}: a read-only hidden property`)
    ;(descriptor.enumerable ? shown : hidden).push(`${JSON.stringify(key)}: ${literal(descriptor.value, `${where}.${key}`, inner)}`)
  }
  const object = `{ ${shown.join(', ')} }`
  return hidden.length === 0 ? object : `hidden(${object}, { ${hidden.join(', ')} })`
}

/** TypeBox builds every schema with a non-enumerable `~kind`. */
const isSchema = (value) => typeof value === 'object' && value !== null && Object.hasOwn(value, '~kind')

/** The schemas to precompile: each schema export, and each schema member of an exported object or array. */
function schemasOf(exports) {
  const found = []
  for (const [name, value] of Object.entries(exports)) {
    if (isSchema(value)) found.push({ ref: name, schema: value })
    else if (typeof value === 'object' && value !== null) {
      for (const [key, member] of Object.entries(value)) if (isSchema(member)) found.push({ ref: `${name}[${JSON.stringify(key)}]`, schema: member })
    }
  }
  return found
}

/** `Code(schema)`'s ES module as one expression (its Check), and the imports it needs. */
function checkExpression(schema, ref) {
  const { Code: module, External: external } = Code(schema)
  if (external.identifier !== 'External') fail(`${ref}: unexpected external identifier ${external.identifier}`)
  const variables = external.variables.map((v, i) => {
    if (!(v instanceof RegExp)) fail(`${ref}: external ${i} is not a RegExp`)
    return `new RegExp(${JSON.stringify(v.source)}, ${JSON.stringify(v.flags)})`
  })
  const imports = [...module.matchAll(/^import \{ (\w+) \} from "(typebox\/[\w-]+)"$/gm)].map(([, name, from]) => ({ name, from }))
  const body = module.replace(/^import .*$/gm, '').replace(/^export function /gm, 'function ').trim()
  if (/^\s*(import|export)\b/m.test(body) || !/^function Check\(value\)/m.test(body) || !/^function SetExternal\(/m.test(body)) {
    fail(`${ref}: typebox/compile's Code() output has a shape this script does not know`)
  }
  return { imports: imports.filter(({ name }) => new RegExp(`\\b${name}\\.`).test(body)), code: `(() => {\n${body}\nSetExternal({ variables: [${variables.join(', ')}] })\nreturn Check\n})()` }
}

function frozenModule(file, exports) {
  const schemas = schemasOf(exports)
  const checks = schemas.map(({ ref, schema }) => ({ ref, ...checkExpression(schema, ref) }))
  const imports = new Map(checks.flatMap((c) => c.imports).map(({ name, from }) => [name, from]))
  let validate = relative(dirname(file), VALIDATE)
  if (!validate.startsWith('.')) validate = `./${validate}`
  const lines = [
    `${MARKER} from ${sourceOf(file)}; tsc's output is ${relative(dirname(file), liveOf(file))}. Do not edit.`,
    ...[...imports].map(([name, from]) => `import { ${name} } from '${from}'`),
    `import { usePrecompiled } from '${validate}'`,
    '',
    'const hidden = (value, props) => { for (const [key, v] of Object.entries(props)) Object.defineProperty(value, key, { value: v, writable: true, enumerable: false, configurable: true }); return value }',
    '',
    ...Object.entries(exports).map(([name, value]) => `export const ${name} = ${literal(value, `${sourceOf(file)}: ${name}`)}`),
    '',
    ...checks.map(({ ref, code }) => `usePrecompiled(${ref}, ${code})`),
    '',
  ]
  return { text: lines.join('\n'), schemas }
}

/** Every own property, hidden or not, with its flags: what the frozen value must match. */
function anatomy(value) {
  if (typeof value !== 'object' || value === null) return value
  const out = {}
  for (const key of Reflect.ownKeys(value)) {
    if (Array.isArray(value) && key === 'length') continue
    const { value: v, enumerable, writable, configurable } = Object.getOwnPropertyDescriptor(value, key)
    out[String(key)] = { v: anatomy(v), enumerable, writable, configurable }
  }
  return { array: Array.isArray(value), out }
}

async function freeze(file) {
  const live = await import(pathToFileURL(liveOf(file)).href)
  const exports = Object.fromEntries(Object.entries(live))
  const { text, schemas } = frozenModule(file, exports)
  writeFileSync(file, text)
  const frozen = await import(`${pathToFileURL(file).href}?built=${Date.now()}`)
  for (const [name, value] of Object.entries(exports)) {
    if (!isDeepStrictEqual(anatomy(frozen[name]), anatomy(value))) fail(`${sourceOf(file)}: ${name} differs once frozen`)
  }
  const frozenSchemas = schemasOf(frozen)
  schemas.forEach(({ ref, schema }, i) => {
    const twin = frozenSchemas[i]
    if (twin?.ref !== ref || Code(twin.schema).Code !== Code(schema).Code) fail(`${sourceOf(file)}: ${ref} compiles differently once frozen`)
  })
}

/** After freezing, nothing in the product may load TypeBox but the generated checks' own helpers. */
function checkNoTypeBox() {
  for (const file of productFiles().filter((f) => !f.endsWith(LIVE))) {
    for (const [, from] of readFileSync(file, 'utf8').matchAll(ANY_TYPEBOX)) {
      if (from !== 'typebox/guard') fail(`${relative(ROOT, file)} still imports ${from} at run time`)
    }
  }
}

try {
  if (process.argv[2] === 'thaw') {
    thaw()
  } else {
    const modules = schemaModules()
    const set = new Set(modules)
    for (const file of modules) keepLive(file, set)
    for (const file of modules) await freeze(file)
    checkNoTypeBox()
  }
} catch (err) {
  if (!(err instanceof FreezeError)) throw err
  console.error(`freeze-schemas: ${err.message}`)
  process.exit(1)
}
