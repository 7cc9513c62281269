/**
 * Dependencies run one way (DEVELOPERS.md): the agent SDK, the demo fleet,
 * the supervisor, the git bridge and the dashboard reach the coordinator only
 * over the bus or HTTP, never by import; the broker knows nothing of the
 * coordinator. Checked on the sources' import statements.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ROOT } from './helpers/hub.js'
import { sourceFiles } from './helpers/source-files.js'

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2] ?? '')
}

// The composition root, src/hub.ts (`../hub.js`, `../../src/hub.js`), not the contract's payloads/hub.ts.
const ROOT_HUB = String.raw`(?:^|/)(?:\.\./)+(?:src/)?hub\.js$`
const FORBIDDEN: [string, RegExp, string][] = [
  ['src/agent', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/`), 'the agent SDK'],
  ['src/fleet', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/`), 'the demo fleet'],
  ['src/supervisor', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/|bridges/`), 'the supervisor'],
  ['bridges', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/`), 'the git bridge'],
  ['web', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/`), 'the dashboard'],
  ['broker', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/agent/`), 'the broker'],
  // src/net (the bus client, the HTTP client) is plumbing every role above may
  // import, the SDK and the bridge included: so it imports none of the roles.
  ['src/net', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/|/agent/|/supervisor/|/fleet/|bridges/`), 'the shared plumbing'],
]

for (const [dir, pattern, what] of FORBIDDEN) {
  test(`${what} (${dir}/) imports nothing of the coordinator`, () => {
    const offenders = sourceFiles(join(ROOT, dir)).flatMap((file) => imports(file).filter((i) => pattern.test(i)).map((i) => `${relative(ROOT, file)} → ${i}`))
    assert.deepEqual(offenders, [])
  })
}

test('the rule names the composition root, not the contract\'s payloads/hub.ts', () => {
  const rule = new RegExp(ROOT_HUB)
  for (const path of ['../hub.js', '../../src/hub.js', '../src/hub.js']) assert.ok(rule.test(path), path)
  for (const path of ['../../src/contract/payloads/hub.js', '../contract/payloads/hub.js', './hub.js']) assert.ok(!rule.test(path), path)
})

test('the import scanner sees imports (so an empty result above means something)', () => {
  const found = imports(join(ROOT, 'src/hub.ts'))
  assert.ok(found.some((i) => i.endsWith('coordinator/coordinator.js')), found.join(', '))
})
