/**
 * The Node build's schema modules are data with their checks generated at
 * build time (scripts/freeze-schemas.mjs, issue #12), so no process loads
 * TypeBox unless a value fails its check. Here each generated check is put
 * beside TypeBox's own Compile of the module as tsc emitted it (the live
 * copy the build keeps), on values made from each schema, valid ones and
 * each of their fields broken or dropped: they must agree on every one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { schemaChecker } from '../src/contract/payloads/validate.js'
import { ROOT } from './helpers/hub.js'

const DIST = join(ROOT, 'dist')

function liveCopies(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? liveCopies(path) : path.endsWith('.live.js') ? [path] : []
  })
}

const isSchema = (value: unknown): value is TSchema => typeof value === 'object' && value !== null && Object.hasOwn(value, '~kind')

/** Strings tried for a `pattern`: the first that matches is the valid value. */
const CANDIDATE_STRINGS = ['a', 'task-1', 'general', 'araya', 'x_1', 'trinity/x', 'A1', '1']

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** One valid value of `schema`, built from its JSON Schema keywords; undefined when none is found. */
function example(schema: Record<string, unknown>): Json | undefined {
  if ('const' in schema) return schema['const'] as Json
  if (Array.isArray(schema['enum'])) return schema['enum'][0] as Json
  if (Array.isArray(schema['anyOf'])) {
    for (const branch of schema['anyOf'] as Record<string, unknown>[]) { const value = example(branch); if (value !== undefined) return value }
    return undefined
  }
  switch (schema['type']) {
    case 'null': return null
    case 'boolean': return true
    case 'integer':
    case 'number': return typeof schema['minimum'] === 'number' ? schema['minimum'] : 1
    case 'string': {
      const min = typeof schema['minLength'] === 'number' ? schema['minLength'] : 0
      const pattern = typeof schema['pattern'] === 'string' ? new RegExp(schema['pattern'], 'u') : undefined
      const strings = [...CANDIDATE_STRINGS, 'x'.repeat(Math.max(min, 1))]
      return strings.find((s) => s.length >= min && (pattern === undefined || pattern.test(s)))
    }
    case 'array': {
      const items = schema['items'] as Record<string, unknown> | undefined
      const item = items === undefined ? undefined : example(items)
      return item === undefined || schema['minItems'] === 0 ? [] : [item]
    }
    case 'object': {
      const out: Record<string, Json> = {}
      const properties = (schema['properties'] ?? {}) as Record<string, Record<string, unknown>>
      for (const [key, property] of Object.entries(properties)) {
        const value = example(property)
        if (value === undefined) { if ((schema['required'] as string[] | undefined)?.includes(key) === true) return undefined; continue }
        out[key] = value
      }
      return out
    }
    default: return 1 // Unknown: anything
  }
}

const ODD: Json[] = [null, -1, 1.5, '', 'x'.repeat(70), 'Not An Id!', [], {}, true]

/** The value, and the value with each field (two levels down) dropped, replaced by each odd value, or joined by an unknown one. */
function variants(value: Json, depth = 0): Json[] {
  const out: Json[] = [value, ...ODD]
  if (depth > 1 || typeof value !== 'object' || value === null) return out
  if (Array.isArray(value)) {
    for (const odd of ODD) out.push([...value, odd])
    value.forEach((item, i) => { for (const v of variants(item, depth + 1)) out.push(value.map((x, j) => (j === i ? v : x))) })
    return out
  }
  out.push({ ...value, unknownField: 1 })
  for (const key of Object.keys(value)) {
    const { [key]: dropped, ...rest } = value
    out.push(rest)
    for (const v of variants(dropped as Json, depth + 1)) out.push({ ...value, [key]: v })
  }
  return out
}

const modules = ['src', 'broker', 'bridges'].flatMap((tree) => liveCopies(join(DIST, tree)))

test('the build froze the schema modules: each has its live copy, and none of the product imports TypeBox but its guard', () => {
  // At least the contract's payloads, its HTTP answers and the config schema: else the checks below check nothing.
  const names = modules.map((file) => relative(DIST, file))
  for (const expected of ['src/contract/payloads/task.live.js', 'src/contract/http.live.js', 'src/config/schema.live.js']) assert.ok(names.includes(expected), `${expected} among ${names.join(', ')}`)
  for (const live of modules) {
    const frozen = readFileSync(live.replace(/\.live\.js$/, '.js'), 'utf8')
    assert.match(frozen, /^\/\/ Frozen by scripts\/freeze-schemas\.mjs/)
    for (const [, from] of frozen.matchAll(/^import .* from '(typebox[^']*)'/gm)) assert.equal(from, 'typebox/guard', `${relative(DIST, live)}: imports ${from}`)
  }
})

for (const live of modules) {
  const name = relative(DIST, live).replace(/\.live\.js$/, '')
  test(`${name}: each generated check agrees with TypeBox's Compile on valid and broken values`, async () => {
    const liveExports = await import(pathToFileURL(live).href) as Record<string, unknown>
    const frozenExports = await import(pathToFileURL(live.replace(/\.live\.js$/, '.js')).href) as Record<string, unknown>
    const pairs: [string, TSchema, TSchema][] = []
    for (const [key, value] of Object.entries(liveExports)) {
      if (isSchema(value)) pairs.push([key, value, frozenExports[key] as TSchema])
      else if (typeof value === 'object' && value !== null) {
        for (const [member, schema] of Object.entries(value)) if (isSchema(schema)) pairs.push([`${key}.${member}`, schema, (frozenExports[key] as Record<string, TSchema>)[member] as TSchema])
      }
    }
    assert.ok(pairs.length > 0, `${name} has schemas`)
    for (const [key, liveSchema, frozenSchema] of pairs) {
      const theirs = Compile(liveSchema)
      const ours = schemaChecker(frozenSchema)
      const valid = example(liveSchema as unknown as Record<string, unknown>)
      assert.notEqual(valid, undefined, `${name}.${key}: an example value`)
      assert.equal(theirs.Check(valid), true, `${name}.${key}: the example ${JSON.stringify(valid)} is valid`)
      let accepted = 0
      const values = variants(valid as Json)
      for (const value of values) {
        const expected = theirs.Check(value)
        assert.equal(ours.Check(value), expected, `${name}.${key}: ${JSON.stringify(value)} (TypeBox: ${expected})`)
        if (expected) accepted++
      }
      assert.ok(accepted < values.length, `${name}.${key}: some variant is invalid`)
    }
  })
}
