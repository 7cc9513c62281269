/**
 * Environment variable names are spelled in one module, src/config/env.ts (as
 * topics are in src/contract/topics.ts): no other source, helper, fixture,
 * bench or script spells one, and the README documents exactly the user-facing
 * set. Test files may spell them: they play a user setting one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ENV, TEST_ENV } from '../src/config/env.js'
import { ROOT } from './helpers/hub.js'
import { sourceFiles } from './helpers/source-files.js'

const MODULE = join('src', 'config', 'env.ts')
const KNOWN: ReadonlySet<string> = new Set([...Object.values(ENV), ...Object.values(TEST_ENV)])

/** What in `code` spells an env name: a known name anywhere, or any quoted `'TRINITY_…'` that is not an error code. */
function envNamesIn(code: string): string[] {
  const text = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*(\/\/|#).*$/gm, '')
  const known = [...text.matchAll(/\bTRINITY_[A-Z0-9_]+\b/g)].map((m) => m[0]).filter((name) => KNOWN.has(name))
  const quoted = [...text.matchAll(/['"`]\$?\{?(TRINITY_(?!ERR_)[A-Z0-9_]+)/g)].map((m) => m[1] ?? '')
  return [...new Set([...known, ...quoted])]
}

test('every env name is a TRINITY_ name, spelled once', () => {
  const names = [...Object.values(ENV), ...Object.values(TEST_ENV)]
  assert.equal(new Set(names).size, names.length)
  for (const name of names) assert.match(name, /^TRINITY_(?!ERR_)[A-Z0-9_]+$/)
})

test('the scanner sees env names in code and not in comments or error codes', () => {
  assert.deepEqual(envNamesIn("const url = process.env['TRINITY_MQTT_URL']"), ['TRINITY_MQTT_URL'])
  assert.deepEqual(envNamesIn('spawn(cmd, { env: { TRINITY_WORKSPACE: dir } })'), ['TRINITY_WORKSPACE'])
  assert.deepEqual(envNamesIn("env['TRINITY_SOMETHING_NEW'] = '1'"), ['TRINITY_SOMETHING_NEW'])
  assert.deepEqual(envNamesIn("// reads TRINITY_URL\n/** and TRINITY_CONFIG */\nthrow new TrinityError('TRINITY_ERR_INTERNAL', 'x')"), [])
})

test('no module outside src/config/env.ts spells an env name (test files may: they play the user)', () => {
  const offenders: string[] = []
  for (const top of ['src', 'broker', 'bridges', 'bench', 'scripts', 'web', 'test']) {
    for (const path of sourceFiles(join(ROOT, top), /\.(ts|mjs|js|sh)$/)) {
      if (path.endsWith(MODULE) || path.endsWith('.test.ts')) continue
      const found = envNamesIn(readFileSync(path, 'utf8'))
      if (found.length > 0) offenders.push(`${relative(ROOT, path)}: ${found.join(', ')}`)
    }
  }
  assert.deepEqual(offenders, [])
})

test('README.md documents exactly the user-facing env names (ENV; TEST_ENV is the harness\'s)', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const documented = new Set([...readme.matchAll(/\bTRINITY_(?!ERR_)[A-Z0-9_]+\b/g)].map((m) => m[0]))
  assert.deepEqual([...documented].sort(), Object.values(ENV).sort())
})
