/**
 * A topic containing U+0000 is refused (issue #14, medium findings): MQTT
 * strings must not contain it, and a receiver that gets one closes the
 * network connection [MQTT-1.5.3-2]. The embedded broker accepted such
 * PUBLISHes and SUBSCRIBEs; now it closes the connection, says why on
 * hub/errors, delivers nothing, and goes on serving everyone else.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt, { type MqttClient } from 'mqtt'
import type { HubError } from '../../src/contract/payloads/hub.js'
import { connackCode, connect, nextMessage, record, startBroker, tcpUrl, topics } from './helpers.js'

const NUL_TOPIC = 'trinity/instance/c1\u0000x/report'

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()))
}

test('a PUBLISH whose topic contains U+0000 closes the connection, reaches nobody, and is said on hub/errors', async (t) => {
  const broker = await startBroker(t)
  const watcher = await connect(t, tcpUrl(broker))
  await watcher.subscribeAsync('#', { qos: 1 })
  const seen = record(watcher)
  const said = nextMessage(watcher, (topic) => topic === topics.hubErrors)
  const sender = await connect(t, tcpUrl(broker))
  const gone = closed(sender)
  // Not awaited: the broker closes instead of acknowledging, and MQTT.js keeps the promise pending.
  sender.publish(NUL_TOPIC, 'forbidden', { qos: 1 })
  await gone
  const error = JSON.parse((await said).payload) as HubError
  assert.equal(error.code, 'TRINITY_ERR_BAD_TOPIC')
  assert.match(error.reason, /U\+0000/)
  assert.equal(error.topic, 'trinity/instance/c1\\u0000x/report')
  // The broker goes on: a later message is delivered, and the forbidden one never was.
  const marker = nextMessage(watcher, (topic) => topic === topics.instanceReport('c1'))
  const other = await connect(t, tcpUrl(broker))
  await other.publishAsync(topics.instanceReport('c1'), 'marker', { qos: 1 })
  await marker
  assert.deepEqual(seen.filter((m) => m.topic !== topics.hubErrors).map((m) => m.payload), ['marker'])
})

test('a SUBSCRIBE whose filter contains U+0000 closes the connection', async (t) => {
  const broker = await startBroker(t)
  const subscriber = await connect(t, tcpUrl(broker))
  const gone = closed(subscriber)
  await assert.rejects(subscriber.subscribeAsync('trinity/\u0000/#', { qos: 1 }))
  await gone
  const fine = await connect(t, tcpUrl(broker))
  const granted = await fine.subscribeAsync(topics.all, { qos: 1 })
  assert.deepEqual(granted.map((g) => g.qos), [1])
})

test('a Will whose topic contains U+0000 is refused at CONNECT', async (t) => {
  const broker = await startBroker(t)
  await assert.rejects(
    mqtt.connectAsync(tcpUrl(broker), { reconnectPeriod: 0, connectTimeout: 10_000, will: { topic: NUL_TOPIC, payload: Buffer.from('x'), qos: 1, retain: false } }),
    (error: unknown) => { assert.equal(connackCode(error), 5); return true },
  )
})
