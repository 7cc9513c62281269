/** The `sync` section: defaults, durations resolved, and mistakes named with file:line:col. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, parseConfig } from '../../src/config/load.js'
import { busUrlFor } from '../../bridges/git/bridge.js'

test('sync defaults: disabled, main, 5m ± 30s, four retries on 2/4/8/16 s, mirrors computer/+/send of the prefix', () => {
  const config = parseConfig('hub: { topicPrefix: lab }\n')
  assert.deepEqual(config.sync, {
    enabled: false, remote: undefined, branch: 'main', workdir: './data/sync', computer: '1', peers: [],
    intervalMs: 300_000, jitterMs: 30_000, retries: 4, backoffMs: [2000, 4000, 8000, 16000], mirror: ['lab/computer/+/send'], retention: 1000,
  })
  assert.ok(Object.isFrozen(config.sync.peers))
})

test('a sync section is validated with file:line:col', () => {
  const problems = (text: string): string[] => {
    try { parseConfig(text, 'x.yaml'); return [] } catch (err) { return (err as ConfigError).problems.map((p) => `${p.line}:${p.col} ${p.field}: ${p.expected}`) }
  }
  assert.deepEqual(problems('sync:\n  enabled: true\n'), ['2:12 sync.enabled: expected sync.remote to be set when sync is enabled'])
  assert.match(problems('sync:\n  computer: "2"\n  peers: ["1", "2"]\n')[0] ?? '', /^3:16 sync\.peers\[1\]: .*computer itself/)
  assert.match(problems('sync:\n  interval: soon\n')[0] ?? '', /^2:13 sync\.interval: expected milliseconds, or a string/)
  assert.match(problems('sync:\n  computer: "a/b"\n')[0] ?? '', /sync\.computer/)
  assert.match(problems('sync:\n  colour: blue\n')[0] ?? '', /sync\.colour: unknown field/)
})

test('the bridge finds the bus by TRINITY_MQTT_URL, else the config', () => {
  // allowInsecure: a broker on every address without auth is refused otherwise (issue #14); the URL is what is tested here.
  const config = parseConfig('hub: { allowInsecure: true }\nbroker: { host: 0.0.0.0, port: 1999 }\n')
  assert.equal(busUrlFor(config, {}), 'mqtt://127.0.0.1:1999')
  assert.equal(busUrlFor(config, { TRINITY_MQTT_URL: 'mqtt://elsewhere:1883' }), 'mqtt://elsewhere:1883')
})
