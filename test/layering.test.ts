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
  ['src/net', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/|/agent/|/supervisor/|/fleet/|bridges/|/mcp/`), 'the shared plumbing'],
  // `trinity mcp` reaches the hub only over the bus and HTTP, like any instance.
  ['src/mcp', new RegExp(String.raw`coordinator/|${ROOT_HUB}|/broker/|/supervisor/|/fleet/|bridges/`), 'trinity mcp'],
]

// The MCP SDK is for `trinity mcp` alone: the hub, the supervisor and the broker never load it.
const MCP = /(?:^|\/)mcp\/|@modelcontextprotocol\//
for (const dir of ['src/coordinator', 'src/supervisor', 'broker', 'src/agent', 'src/net', 'src/contract', 'src/config']) {
  test(`${dir}/ imports neither src/mcp nor the MCP SDK`, () => {
    const offenders = sourceFiles(join(ROOT, dir)).flatMap((file) => imports(file).filter((i) => MCP.test(i)).map((i) => `${relative(ROOT, file)} → ${i}`))
    assert.deepEqual(offenders, [])
  })
}

/** Static imports only: `import … from`, `export … from`, bare `import '…'`. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)(?:[^'"()]*?from)?\s*['"]([^'"]+)['"]/g)].map((m) => m[1] ?? '')
}

test('the CLI and the hub load trinity mcp only on demand (a dynamic import in `trinity mcp`)', () => {
  for (const file of ['src/cli/main.ts', 'src/hub.ts']) {
    const loaded = staticImports(join(ROOT, file)).filter((i) => MCP.test(i))
    assert.deepEqual(loaded, [], file)
  }
  assert.ok(imports(join(ROOT, 'src/cli/main.ts')).includes('../mcp/main.js'), 'the mcp command imports ../mcp/main.js dynamically')
  // The static scanner sees a static import of the SDK where there is one.
  assert.ok(staticImports(join(ROOT, 'src/mcp/main.ts')).includes('@modelcontextprotocol/sdk/server/stdio.js'))
  // And the MCP side uses the SDK, so the rules above test something.
  assert.ok(sourceFiles(join(ROOT, 'src/mcp')).some((file) => imports(file).some((i) => i.startsWith('@modelcontextprotocol/'))))
})

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
