/** Config: invalid files fail with file:line:col, the field path and what was expected, and exit code 2. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, parseConfig } from '../src/config/load.js'
import { SEED_ROUTES } from '../src/config/defaults.js'
import { CLI, ROOT, tempDir } from './helpers/hub.js'

function problems(text: string): string[] {
  try {
    parseConfig(text, 'x.yaml')
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return err.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.field}: ${p.expected}`)
  }
  assert.fail('expected a ConfigError')
}

test('the repository config is valid and routes like the seed', () => {
  const run = spawnSync('node', ['-e', `import('${join(ROOT, 'dist/src/config/load.js')}').then(m => console.log(JSON.stringify(m.loadConfigFile('${join(ROOT, 'config/trinity.yaml')}').routes)))`], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.deepEqual(JSON.parse(run.stdout), SEED_ROUTES)
})

test('defaults: an empty file is a valid config with the seed routing table', () => {
  const config = parseConfig('', 'empty.yaml')
  assert.equal(config.hub.port, 8900)
  assert.equal(config.broker.port, 1883)
  assert.equal(config.hub.host, '127.0.0.1')
  assert.equal(config.health.intervalMs, 30_000)
  assert.deepEqual(config.routes, SEED_ROUTES)
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.hub))
})

test('a wrong type names the line, column, field path and expectation', () => {
  assert.deepEqual(problems('hub:\n  port: 8900\ninstances:\n  - id: araya\n    port: "eighty"\n'), [
    'x.yaml:5:11: instances[0].port: expected to be integer, got "eighty"',
  ])
})

test('unknown keys, bad enums, bad durations and YAML syntax errors are all located', () => {
  const found = problems('hub:\n  prot: 1\nroutes:\n  general: { targets: [c1], strategy: fastest }\ntasks:\n  lease: 10 minutes\n')
  assert.deepEqual(found, [
    'x.yaml:2:3: hub.prot: unknown field (allowed: host, port, dataDir, topicPrefix, statsInterval, requestTimeout, auth, allowInsecure, allowedOrigins, tls)',
    'x.yaml:4:39: routes.general.strategy: expected one of "all", "least-loaded", "round-robin", got "fastest"',
    'x.yaml:6:10: tasks.lease: expected milliseconds, or a string such as 500ms, 30s, 5m, 2h, 7d, got "10 minutes"',
  ])
  assert.match(problems('a: [1, 2\n')[0] ?? '', /^x\.yaml:\d+:\d+: \(yaml\): /)
  assert.deepEqual(problems('instances:\n  - id: a\n  - id: a\n'), ['x.yaml:3:9: instances[1].id: expected a unique id, "a" is already used by instances[0]'])
  assert.deepEqual(problems('broker:\n  mode: external\n'), ['x.yaml:2:9: broker.mode: expected broker.url to be set when mode is "external"'])
  assert.deepEqual(problems('instances:\n  - id: a\n    adapter: http\n'), ['x.yaml:3:14: instances[0].adapter: expected `url` to be set when adapter is "http"'])
})

test('broker.url takes a list of a cluster\'s nodes; broker.flavor nats refuses config ids with a "." at load', () => {
  const nodes = 'mqtt://127.0.0.1:1884,mqtt://127.0.0.1:1885'
  const config = parseConfig(`broker:\n  mode: external\n  url: ${nodes}\n  flavor: nats\n`, 'x.yaml')
  assert.equal(config.broker.url, nodes)
  assert.equal(config.broker.flavor, 'nats')
  assert.equal(parseConfig('', 'x.yaml').broker.flavor, 'mqtt')
  assert.match(problems('broker:\n  mode: external\n  url: mqtt://a:1,http://b:2\n')[0] ?? '', /^x\.yaml:3:8: broker\.url: expected /)
  assert.deepEqual(problems('broker:\n  flavor: nats\n'), ['x.yaml:2:11: broker.flavor: expected only with broker.mode "external" (it names the external broker)'])
  const nats = 'broker:\n  mode: external\n  url: mqtt://127.0.0.1:1884\n  flavor: nats\n'
  assert.deepEqual(problems(`${nats}hub:\n  topicPrefix: eu.trinity\ninstances:\n  - id: c1\n  - id: w.1\nsync:\n  computer: c.1\n  peers: [a.b, c]\n`), [
    'x.yaml:6:16: hub.topicPrefix: expected a topic prefix without "." with broker.flavor "nats" (nats-server 2.9 cannot carry it in a topic level), got "eu.trinity"',
    'x.yaml:9:9: instances[1].id: expected an instance id without "." with broker.flavor "nats" (nats-server 2.9 cannot carry it in a topic level), got "w.1"',
    'x.yaml:11:13: sync.computer: expected a computer id without "." with broker.flavor "nats" (nats-server 2.9 cannot carry it in a topic level), got "c.1"',
    'x.yaml:12:11: sync.peers[0]: expected a computer id without "." with broker.flavor "nats" (nats-server 2.9 cannot carry it in a topic level), got "a.b"',
  ])
  // The same ids are fine on any other broker.
  assert.equal(parseConfig('hub:\n  topicPrefix: eu.trinity\ninstances:\n  - id: w.1\n', 'x.yaml').instances[0]?.id, 'w.1')
})

test('store.backend nats-kv: the servers, replicas, lease and NATS login, only with an external broker; their keys only with it', () => {
  const external = 'broker:\n  mode: external\n  url: mqtt://127.0.0.1:1884\n'
  const config = parseConfig(`${external}store:\n  backend: nats-kv\n  url: nats://127.0.0.1:4222,nats://127.0.0.1:4223\n  replicas: 1\n  lease: 3s\n`, 'x.yaml')
  assert.deepEqual(config.store, { sync: 'normal', backend: 'nats-kv', urls: ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223'], replicas: 1, leaseMs: 3000, login: null })
  assert.deepEqual(parseConfig('', 'x.yaml').store, { sync: 'normal', backend: 'sqlite', urls: [], replicas: 3, leaseMs: 10_000, login: null })
  const nats = `${external}store:\n  backend: nats-kv\n  url: nats://127.0.0.1:4222\n`
  assert.deepEqual(parseConfig(`${nats}  username: hub\n  password: s3cret\n`, 'x.yaml').store.login, { username: 'hub', password: 's3cret' })
  assert.deepEqual(problems(`${nats}  username: hub\n`), ['x.yaml:7:13: store.username: expected store.password with store.username'])
  assert.deepEqual(problems(`${nats}  password: s3cret\n`), ['x.yaml:7:13: store.password: expected store.username with store.password'])
  assert.deepEqual(problems('store:\n  username: hub\n'), ['x.yaml:2:13: store.username: expected only with store.backend "nats-kv"'])
  assert.deepEqual(problems(`${external}store:\n  backend: nats-kv\n`), ['x.yaml:5:12: store.backend: expected store.url (the NATS servers, nats://host:4222,…) with backend "nats-kv"'])
  assert.deepEqual(problems('store:\n  backend: nats-kv\n  url: nats://127.0.0.1:4222\n'), [
    'x.yaml:2:12: store.backend: expected broker.mode "external" with backend "nats-kv" (an embedded broker goes down with its hub, so no standby could take over)',
  ])
  assert.deepEqual(problems('store:\n  replicas: 3\n'), ['x.yaml:2:13: store.replicas: expected only with store.backend "nats-kv"'])
  assert.match(problems(`${external}store:\n  backend: nats-kv\n  url: mqtt://127.0.0.1:4222\n`)[0] ?? '', /^x\.yaml:6:8: store\.url: expected /)
})

test('trinity start with an invalid file prints file:line:col and exits with code 2', () => {
  const dir = tempDir()
  try {
    const file = join(dir.path, 'bad.yaml')
    writeFileSync(file, 'hub:\n  port: high\n')
    const run = spawnSync(process.execPath, [CLI, 'start', '--config', file], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(run.status, 2)
    assert.equal(run.stderr.trim(), `${file}:2:9: hub.port: expected to be integer, got "high"`)
    const viaEnv = spawnSync(process.execPath, [CLI, 'start'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, TRINITY_CONFIG: file } })
    assert.equal(viaEnv.status, 2)
    const missing = spawnSync(process.execPath, [CLI, 'start', '--config', join(dir.path, 'nope.yaml')], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(missing.status, 2)
    assert.match(missing.stderr, /not found/)
  } finally {
    dir.remove()
  }
})

test('ids written as YAML numbers are accepted and resolved to strings', () => {
  const config = parseConfig([
    'sync:\n  computer: 2\n  peers: [1, 3]',
    'instances:\n  - { id: 7, role: 12 }\n  - { id: c1 }',
    'routes:\n  general: { targets: [7, c1] }',
    'tasks:\n  fallback: { targets: [7] }',
    'broker:\n  auth:\n    users:\n      - { username: 7, password: change-me, role: instance }',
  ].join('\n') + '\n', 'ids.yaml')
  assert.equal(config.sync.computer, '2')
  assert.deepEqual(config.sync.peers, ['1', '3'])
  assert.deepEqual(config.instances.map((i) => [i.id, i.role]), [['7', '12'], ['c1', undefined]])
  assert.deepEqual(config.routes['general']?.targets, ['7', 'c1'])
  assert.deepEqual(config.tasks.fallback?.targets, ['7'])
  assert.equal(config.broker.auth.users[0]?.username, '7')
  // The checks that compare ids see `2` and "2" as one id.
  assert.match(problems('sync:\n  computer: 2\n  peers: ["2"]\n')[0] ?? '', /^x\.yaml:3:11: sync\.peers\[0\]: expected the other computers, "2" is sync\.computer itself$/)
  assert.deepEqual(problems('instances:\n  - id: 2\n  - id: "2"\n'), ['x.yaml:3:9: instances[1].id: expected a unique id, "2" is already used by instances[0]'])
})

test('negative and fractional ids are refused, saying what an id is', () => {
  const id = 'expected an id (letters, digits, `.`, `_`, `-`; at most 64) or a whole number ≥ 0'
  assert.deepEqual(problems('sync:\n  computer: -1\n  peers: [1, 2.5]\n'), [
    `x.yaml:2:13: sync.computer: ${id}, got -1`,
    `x.yaml:3:14: sync.peers[1]: ${id}, got 2.5`,
  ])
  assert.deepEqual(problems('instances:\n  - id: 1.5\n'), [`x.yaml:2:9: instances[0].id: ${id}, got 1.5`])
  assert.deepEqual(problems('routes:\n  general: { targets: [-3] }\n'), [`x.yaml:2:24: routes.general.targets[0]: ${id}, got -3`])
  assert.deepEqual(problems('sync:\n  computer: "a/b"\n'), [`x.yaml:2:13: sync.computer: ${id}, got "a/b"`])
})

test('one tab in the shipped config is one clear error line and exit code 2', () => {
  const dir = tempDir()
  try {
    // The broker's port, indented with a tab: the parser alone reports six problems for it.
    const lines = readFileSync(join(ROOT, 'config/trinity.yaml'), 'utf8').split('\n')
    const broker = lines.indexOf('broker:')
    const port = lines.findIndex((l, i) => i > broker && /^  port: /.test(l))
    assert.ok(broker >= 0 && port > broker, 'the shipped config has broker.port')
    lines[port] = `\t${lines[port]?.trimStart() ?? ''}`
    const file = join(dir.path, 'tabbed.yaml')
    writeFileSync(file, lines.join('\n'))
    const run = spawnSync(process.execPath, [CLI, 'start', '--config', file], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(run.status, 2, run.stderr)
    assert.deepEqual(run.stderr.split('\n').filter((l) => l !== ''), [`${file}:${port + 1}:1: (yaml): tabs are not allowed for indentation; indent with spaces`])
    assert.equal(run.stdout, '')
  } finally {
    dir.remove()
  }
})
