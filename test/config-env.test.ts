/**
 * TRINITY_SET: overrides from the environment laid over the YAML and
 * validated by the same schema, errors named `TRINITY_SET:1:col` like a
 * file's, exit code 2 from the CLI. The shipped config/trinity.yaml runs
 * unchanged with a test's data dir and health interval (test/user-path/).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ConfigError, loadConfigFile } from '../src/config/load.js'
import { CLI, ROOT } from './helpers/hub.js'

const SEED = join(ROOT, 'config/trinity.yaml')

function problemsOf(set: string): string[] {
  try {
    loadConfigFile(SEED, { TRINITY_SET: set })
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.message.replace(/^invalid configuration: /, '').split('\n')
  }
  assert.fail(`TRINITY_SET=${set} was accepted`)
}

test('TRINITY_SET overrides scalars, list items and whole mappings of the shipped config', () => {
  const plain = loadConfigFile(SEED, {})
  const config = loadConfigFile(SEED, {
    TRINITY_SET: 'health.interval=2s, hub.dataDir=/tmp/trinity-x,instances.3.port=6001,routes.general={ targets: [c1, araya] },log.file=null',
  })
  assert.equal(plain.health.intervalMs, 30_000)
  assert.equal(config.health.intervalMs, 2000)
  assert.equal(config.hub.dataDir, '/tmp/trinity-x')
  assert.equal(config.instances[3]?.id, 'visitor-intelligence')
  assert.equal(config.instances[3]?.port, 6001)
  assert.deepEqual(config.routes['general']?.targets, ['c1', 'araya'], 'a comma inside brackets does not split entries')
  assert.equal(config.log.file, null)
  // Everything not named is the file's.
  assert.equal(config.hub.port, plain.hub.port)
  assert.equal(config.instances.length, plain.instances.length)
})

test('a bad override is refused by the schema, located in TRINITY_SET with its column', () => {
  assert.deepEqual(problemsOf('log.level=debug,health.interval=fast'), [
    'TRINITY_SET:1:17: health.interval: expected milliseconds, or a string such as 500ms, 30s, 5m, 2h, 7d, got "fast"',
  ])
  assert.match(problemsOf('health.intervall=2s')[0] ?? '', /^TRINITY_SET:1:1: health\.intervall: unknown field \(allowed: interval, /)
  assert.deepEqual(problemsOf('oops'), ['TRINITY_SET:1:1: (env): expected path=value, got "oops"'])
  assert.deepEqual(problemsOf('instances.9.port=1'), ['TRINITY_SET:1:1: instances[9].port: expected an index from 0 to 6 (instances has 6 items; 6 adds one)'])
  assert.match(problemsOf('hub.port=abc')[0] ?? '', /^TRINITY_SET:1:1: hub\.port: expected to be integer, got "abc"$/)
})

test('trinity start with a bad TRINITY_SET exits 2 with the problem on stderr', () => {
  const result = spawnSync(process.execPath, [CLI, 'start', '--config', SEED], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TRINITY_SET: 'supervisor.readyTimeout=soon' },
  })
  assert.equal(result.status, 2, result.stderr)
  assert.match(result.stderr, /^TRINITY_SET:1:1: supervisor\.readyTimeout: expected .*got "soon"$/m)
})
