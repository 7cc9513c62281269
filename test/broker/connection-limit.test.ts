/**
 * Connections per user (issue #14, build list): with auth on, one config user
 * holds at most `limits.maxConnectionsPerUser` connections; one more is
 * refused with CONNACK 5 and a log line. A reconnect under an id the user
 * already holds replaces that connection and is not counted twice; the hub's
 * own credential is not bounded.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt, { type MqttClient } from 'mqtt'
import { parseConfig } from '../../src/config/load.js'
import type { BrokerUser } from '../../src/config/schema.js'
import { captureLog, connackCode, connect, startBroker, tcpUrl } from './helpers.js'

const araya: BrokerUser = { username: 'araya', password: 'araya-secret', role: 'instance' }
const hubAdmin: BrokerUser = { username: 'hub-internal', password: 'generated-7f3a', role: 'admin' }

test('limits.maxConnectionsPerUser: 100 by default, configurable, at least 1', () => {
  assert.equal(parseConfig('', 'x.yaml').limits.maxConnectionsPerUser, 100)
  assert.equal(parseConfig('limits:\n  maxConnectionsPerUser: 3\n', 'x.yaml').limits.maxConnectionsPerUser, 3)
  assert.throws(() => parseConfig('limits:\n  maxConnectionsPerUser: 0\n', 'x.yaml'), /limits\.maxConnectionsPerUser/)
})

test('one connection over the bound is refused; a reconnect under a held id and the hub admin are not', async (t) => {
  const { logger, records } = captureLog()
  const broker = await startBroker(t, { auth: { enabled: true, users: [araya] }, internalUsers: [hubAdmin], maxConnectionsPerUser: 3, logger })
  const login = { username: araya.username, password: araya.password }
  const held: MqttClient[] = []
  for (let i = 0; i < 3; i++) held.push(await connect(t, tcpUrl(broker), { ...login, clientId: `araya-${i}` }))
  await assert.rejects(
    mqtt.connectAsync(tcpUrl(broker), { ...login, clientId: 'araya-3', reconnectPeriod: 0, connectTimeout: 10_000 }),
    (error: unknown) => { assert.equal(connackCode(error), 5); return true },
  )
  assert.match(String(records.find((r) => r['clientId'] === 'araya-3')?.['msg']), /already has 3 connections \(limits\.maxConnectionsPerUser\)/)
  assert.ok(held.every((c) => c.connected), 'the three keep theirs')
  // A takeover of araya-0 by araya itself replaces it.
  const replaced = new Promise<void>((resolve) => held[0]!.once('close', () => resolve()))
  const again = await connect(t, tcpUrl(broker), { ...login, clientId: 'araya-0' })
  await replaced
  assert.equal(again.connected, true)
  // One leaves: there is room again.
  await held[1]!.endAsync()
  const next = await connect(t, tcpUrl(broker), { ...login, clientId: 'araya-4' })
  assert.equal(next.connected, true)
  // The hub's own credential is not counted.
  for (let i = 0; i < 5; i++) await connect(t, tcpUrl(broker), { username: hubAdmin.username, password: hubAdmin.password, clientId: `hub-${i}` })
})
