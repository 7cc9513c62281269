/**
 * An exposed hub is safe by default (issue #14, finding 6): a hub or broker
 * bound beyond loopback without auth, or broker auth without HTTP tokens, is
 * refused at start (`file:line:col`, exit code 2) unless `hub.allowInsecure`;
 * the token forms are checked; and the hub logs the address its socket is
 * really bound to (a real `trinity hub` on 0.0.0.0, in a network namespace of
 * its own with only `lo`, so nothing outside this test can reach it).
 */
import { spawn, spawnSync } from 'node:child_process'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, parseConfig } from '../src/config/load.js'
import { CLI, tempDir, testConfig, waitFor, writeConfig } from './helpers/hub.js'

const TOKEN = 'exposure-token-0123456789abcdef'

/** `line:col field: expected` of each problem, or [] when the config loads. */
function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(yaml, 'test.yaml', undefined, { env })
    return []
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems.map((p) => `${p.line}:${p.col} ${p.field}: ${p.expected}`)
  }
}

test('beyond loopback without auth, or broker auth without tokens, the config is refused naming the field and the way out', () => {
  const open = problems('hub:\n  host: 0.0.0.0\n')
  assert.equal(open.length, 2, open.join('\n'))
  assert.match(open[0] ?? '', /^2:9 hub\.host: expected a loopback address .* while hub\.auth\.tokens is empty: anyone who reaches 0\.0\.0\.0 .*hub\.allowInsecure: true/)
  assert.match(open[1] ?? '', /^2:9 hub\.host: expected broker\.auth\.enabled \(or broker\.websocket: false\).*\/mqtt/)
  assert.match(problems('broker:\n  host: 192.168.1.5\n').join('\n'), /^2:9 broker\.host: expected a loopback address .* while broker\.auth\.enabled is false/)
  assert.match(problems('broker:\n  auth:\n    enabled: true\n').join('\n'), /^3:14 broker\.auth\.enabled: expected hub\.auth\.tokens as well/)
  // With both kinds of auth, or an explicit allowInsecure, it loads.
  const tokens = `  auth:\n    tokens: [{ name: ops, scope: admin, token: ${TOKEN} }]\n`
  assert.deepEqual(problems(`hub:\n  host: 0.0.0.0\n${tokens}broker:\n  host: 0.0.0.0\n  auth:\n    enabled: true\n`), [])
  assert.deepEqual(problems('hub:\n  host: 0.0.0.0\n  allowInsecure: true\nbroker:\n  host: "::"\n'), [])
  assert.deepEqual(problems('hub:\n  host: 0.0.0.0\n  allowInsecure: true\n  websocket: false\n').length, 1, 'unknown keys still fail')
  // Loopback in its spellings is not exposure.
  for (const host of ['127.0.0.1', '127.0.1.1', 'localhost', '::1', '[::1]']) assert.deepEqual(problems(`hub:\n  host: "${host}"\nbroker:\n  host: "${host}"\n`), [], host)
})

test('each token names its secret exactly one way; tokenEnv must be set; names are unique', () => {
  const two = problems(`hub:\n  auth:\n    tokens:\n      - { name: a, scope: read, token: ${TOKEN}, tokenEnv: X }\n`, { X: TOKEN })
  assert.match(two.join('\n'), /^4:9 hub\.auth\.tokens\[0\]: expected exactly one of token, tokenHash, tokenEnv, got 2/)
  assert.match(problems('hub:\n  auth:\n    tokens:\n      - { name: a, scope: read }\n').join('\n'), /got 0/)
  assert.match(problems('hub:\n  auth:\n    tokens:\n      - { name: a, scope: read, tokenEnv: TRINITY_TEST_UNSET }\n').join('\n'),
    /hub\.auth\.tokens\[0\]\.tokenEnv: expected the environment variable TRINITY_TEST_UNSET to hold the token/)
  assert.match(problems('hub:\n  auth:\n    tokens:\n      - { name: a, scope: read, tokenHash: abc }\n').join('\n'), /tokenHash: expected a string matching/)
  assert.match(problems('hub:\n  auth:\n    tokens:\n      - { name: a, scope: root, token: x }\n').join('\n'), /scope: expected one of "read", "submit", "admin"/)
  assert.match(problems(`hub:\n  auth:\n    tokens:\n      - { name: a, scope: read, token: ${TOKEN} }\n      - { name: a, scope: admin, token: ${TOKEN}z }\n`).join('\n'), /tokens\[1\]\.name: expected a unique name/)
  // Only the digest is kept: the secret is nowhere in the resolved config.
  const config = parseConfig(`hub:\n  auth:\n    tokens:\n      - { name: a, scope: read, tokenEnv: T }\n`, 'test.yaml', undefined, { env: { T: TOKEN } })
  assert.equal(JSON.stringify(config).includes(TOKEN), false)
  assert.equal(config.hub.auth.tokens[0]?.sha256.length, 64)
})

test('`trinity hub` on 0.0.0.0 without auth exits 2 with the reason; it never listens', async () => {
  const dir = tempDir()
  try {
    const file = writeConfig(dir.path, await testConfig(dir.path, { hub: { host: '0.0.0.0' } }))
    const run = spawnSync(process.execPath, [CLI, 'hub', '--config', file], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(run.status, 2, run.stderr)
    assert.match(run.stderr, /trinity\.yaml:\d+:\d+: hub\.host: expected a loopback address/)
    assert.doesNotMatch(run.stdout, /trinity hub started/)
  } finally {
    dir.remove()
  }
})

test('the hub logs the address it is bound to: 0.0.0.0, not a 127.0.0.1 URL (allowInsecure, in a namespace with only lo)', async () => {
  const probe = spawnSync('unshare', ['-n', 'true'], { encoding: 'utf8' })
  assert.equal(probe.status, 0, `this test needs unshare -n: ${probe.stderr}`)
  const dir = tempDir()
  const file = writeConfig(dir.path, await testConfig(dir.path, { hub: { host: '0.0.0.0', allowInsecure: true }, log: { level: 'info', pretty: false } }))
  const child = spawn('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" "${CLI}" hub --config "${file}"`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try {
    await waitFor(() => out.includes('trinity hub started') || child.exitCode !== null, 60_000, 'the hub to start')
    const line = out.split('\n').find((l) => l.includes('trinity hub started')) ?? ''
    const started = JSON.parse(line) as { listening: { http: string }; http: string }
    assert.match(started.listening.http, /^0\.0\.0\.0:\d+$/, line)
    assert.match(out, /hub\.allowInsecure: listening beyond loopback/, 'and warns that it is insecure')
  } finally {
    child.kill('SIGTERM')
    await exited
    dir.remove()
  }
})
