/**
 * Config overrides from the environment: `TRINITY_SET`, a list of
 * `path=value` entries separated by commas, laid over the YAML before it is
 * validated, so the one schema checks them as it checks the file:
 *
 *   TRINITY_SET='health.interval=2s,hub.dataDir=/tmp/trinity,instances.3.port=6001' npm start
 *
 * - A path is dotted keys; a number indexes a list (`instances.3.port`).
 *   Missing mappings on the way are created.
 * - A value is read as YAML: `2s` and `/tmp/x` are strings, `8900` a number,
 *   `true`, `null`, and flow collections `[a, b]`, `{ targets: [c1] }`. Commas
 *   inside brackets or quotes do not split entries.
 * - Errors name `TRINITY_SET:1:col`, the field and what was expected, like a
 *   file's (exit code 2).
 *
 * Why: the shipped config/trinity.yaml must be runnable unchanged where only
 * a few settings differ (a test's data dir and health interval, a container's
 * port), without copying the file.
 */
import { isSeq, parse, type Document } from 'yaml'
import { ENV } from './env.js'
import type { ConfigProblem } from './load.js'

export interface Override {
  readonly path: readonly (string | number)[]
  readonly value: unknown
  /** 1-based column of the entry in the variable, for error messages. */
  readonly col: number
}

export interface OverrideProblem {
  readonly col: number
  readonly field: string
  readonly expected: string
}

/** The entries of one TRINITY_SET value, or the problems with it. */
function parseOverrides(text: string): { overrides: Override[]; problems: OverrideProblem[] } {
  const overrides: Override[] = []
  const problems: OverrideProblem[] = []
  for (const { entry, col } of splitEntries(text)) {
    if (entry.trim() === '') continue
    const eq = entry.indexOf('=')
    const lead = entry.length - entry.trimStart().length
    const key = eq < 0 ? entry.trim() : entry.slice(0, eq).trim()
    if (eq < 0 || key === '') {
      problems.push({ col: col + lead, field: '(env)', expected: `expected path=value, got ${JSON.stringify(entry.trim())}` })
      continue
    }
    const parts = key.split('.')
    if (parts.some((p) => p === '')) {
      problems.push({ col: col + lead, field: key, expected: 'expected a dotted path such as health.interval' })
      continue
    }
    const path = parts.map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p))
    const rawValue = entry.slice(eq + 1).trim()
    let value: unknown
    try {
      value = rawValue === '' ? '' : (parse(rawValue) as unknown)
    } catch (err) {
      problems.push({ col: col + eq + 1, field: key, expected: `expected a YAML value, ${(err as Error).message.split('\n')[0] ?? ''}` })
      continue
    }
    overrides.push({ path, value, col: col + lead })
  }
  return { overrides, problems }
}

/** Splits on commas outside brackets, braces and quotes, keeping each entry's 1-based column. */
function splitEntries(text: string): { entry: string; col: number }[] {
  const out: { entry: string; col: number }[] = []
  let depth = 0
  let quote: string | null = null
  let start = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quote !== null) {
      if (c === quote) quote = null
    } else if (c === '"' || c === "'") {
      quote = c
    } else if (c === '[' || c === '{') {
      depth++
    } else if (c === ']' || c === '}') {
      depth = Math.max(0, depth - 1)
    } else if (c === ',' && depth === 0) {
      out.push({ entry: text.slice(start, i), col: start + 1 })
      start = i + 1
    }
  }
  out.push({ entry: text.slice(start), col: start + 1 })
  return out
}

/** `a.b[2].c`, as the config errors spell a field. */
function overrideField(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

/**
 * Lays TRINITY_SET's entries over a parsed YAML document (so that error
 * messages see the overriding value), and relocates any problem in an
 * overridden field to the variable.
 */
export function layOverrides(doc: Document, text: string | undefined): { problems: ConfigProblem[]; relocate: (problem: ConfigProblem) => ConfigProblem } {
  const here = (col: number, field: string, expected: string): ConfigProblem => ({ file: ENV.set, line: 1, col, field, expected })
  if (text === undefined || text.trim() === '') return { problems: [], relocate: (p) => p }
  const { overrides, problems: syntax } = parseOverrides(text)
  const problems = syntax.map((p) => here(p.col, p.field, p.expected))
  const laid: { field: string; col: number }[] = []
  for (const o of overrides) {
    const gap = listGap(doc, o.path)
    if (gap !== undefined) {
      problems.push(here(o.col, overrideField(o.path), gap))
      continue
    }
    try {
      if (doc.contents === null) doc.contents = doc.createNode({})
      doc.setIn(o.path, o.value)
      laid.push({ field: overrideField(o.path), col: o.col })
    } catch (err) {
      problems.push(here(o.col, overrideField(o.path), `expected a path into mappings and lists (${(err as Error).message})`))
    }
  }
  const relocate = (problem: ConfigProblem): ConfigProblem => {
    // The longest overridden path that is the field or one of its parents.
    const owner = laid
      .filter((l) => problem.field === l.field || problem.field.startsWith(`${l.field}.`) || problem.field.startsWith(`${l.field}[`))
      .sort((a, b) => b.field.length - a.field.length)[0]
    return owner === undefined ? problem : here(owner.col, problem.field, problem.expected)
  }
  return { problems, relocate }
}

/** A list index past the end would leave holes (null items): refused, naming the list's length. */
function listGap(doc: Document, path: readonly (string | number)[]): string | undefined {
  for (let i = 0; i < path.length; i++) {
    const key = path[i]
    if (typeof key !== 'number') continue
    const list = i === 0 ? doc.contents : doc.getIn(path.slice(0, i), true)
    const length = isSeq(list) ? list.items.length : 0
    if (key > length) return `expected an index from 0 to ${length} (${overrideField(path.slice(0, i)) || 'the list'} has ${length} items; ${length} adds one)`
  }
  return undefined
}
