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

const FORBIDDEN: [string, RegExp, string][] = [
  ['src/agent', /coordinator\/|\/hub\.js$|\/broker\//, 'the agent SDK'],
  ['src/fleet', /coordinator\/|\/hub\.js$|\/broker\//, 'the demo fleet'],
  ['src/supervisor', /coordinator\/|\/hub\.js$|\/broker\/|bridges\//, 'the supervisor'],
  ['bridges', /coordinator\/|\/hub\.js$|\/broker\//, 'the git bridge'],
  ['web', /coordinator\/|\/hub\.js$|\/broker\//, 'the dashboard'],
  ['broker', /coordinator\/|\/hub\.js$|\/agent\//, 'the broker'],
  // src/net (the bus client, the HTTP client) is plumbing every role above may
  // import, the SDK and the bridge included: so it imports none of the roles.
  ['src/net', /coordinator\/|\/hub\.js$|\/broker\/|\/agent\/|\/supervisor\/|\/fleet\/|bridges\//, 'the shared plumbing'],
]

for (const [dir, pattern, what] of FORBIDDEN) {
  test(`${what} (${dir}/) imports nothing of the coordinator`, () => {
    const offenders = sourceFiles(join(ROOT, dir)).flatMap((file) => imports(file).filter((i) => pattern.test(i)).map((i) => `${relative(ROOT, file)} → ${i}`))
    assert.deepEqual(offenders, [])
  })
}

test('the import scanner sees imports (so an empty result above means something)', () => {
  const found = imports(join(ROOT, 'src/hub.ts'))
  assert.ok(found.some((i) => i.endsWith('coordinator/coordinator.js')), found.join(', '))
})
