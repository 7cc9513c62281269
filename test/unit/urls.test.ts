/** The one place URLs are built from the config: every-address binds go to loopback, IPv6 literals in brackets. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/load.js'
import { busUrl, hubHttpUrl, reachableHost } from '../../src/config/urls.js'

test('servers bound to every address are reached on loopback; IPv6 literals are bracketed', () => {
  assert.deepEqual(['0.0.0.0', '::', '[::]', '::1', 'fe80::1', '[::1]', '127.0.0.1', 'hub.lan'].map(reachableHost),
    ['127.0.0.1', '127.0.0.1', '127.0.0.1', '[::1]', '[fe80::1]', '[::1]', '127.0.0.1', 'hub.lan'])
})

test('hub and bus URLs from the config, with the bound port when it differs', () => {
  // allowInsecure: every address without auth is refused otherwise (issue #14); the URLs are what is tested here.
  const config = parseConfig('hub: { host: "::", port: 8900, allowInsecure: true }\nbroker: { host: "::1", port: 1883 }\ninstances: []\n', 'test.yaml')
  assert.equal(hubHttpUrl(config), 'http://127.0.0.1:8900')
  assert.equal(hubHttpUrl(config, 40000), 'http://127.0.0.1:40000')
  assert.equal(busUrl(config), 'mqtt://[::1]:1883')
  const external = parseConfig('broker: { mode: external, url: "mqtt://broker.lan:1883" }\ninstances: []\n', 'test.yaml')
  assert.equal(busUrl(external, 1), 'mqtt://broker.lan:1883')
})
