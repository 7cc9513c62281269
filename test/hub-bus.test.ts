/**
 * The coordinator's MQTT bus (src/coordinator/hub-bus.ts), on real Mosquitto.
 *
 * It closes even when a
 * QoS 1 publish is in flight and the broker is gone: MQTT.js's graceful end
 * would wait for that PUBACK for ever, and a deposed cluster hub, whose stop
 * awaits this close, never exited (issue #13). SIGSTOP, so the publish gets
 * no PUBACK, then SIGKILL, so the client is reconnecting.
 *
 * And it reads on while a PUBACK is held for a replicated store: many
 * messages in flight to the store at once, not one per round trip.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { mqttHubBus } from '../src/coordinator/hub-bus.js'
import { silentLogger } from '../src/log.js'
import { startMosquitto, testScope, waitFor } from './helpers/hub.js'

const { dir, cleanups } = testScope()

test('the bus closes with a QoS 1 publish unacknowledged and its broker killed', async () => {
  const broker = await startMosquitto(dir.path)
  cleanups.push(() => broker.stop())
  const bus = mqttHubBus({ url: broker.url, clientId: 'close-test', log: silentLogger() })
  cleanups.push(() => bus.close())
  await bus.start({ 'close-test/in': { qos: 1 } }, (_topic, _payload, ack) => ack())
  assert.equal(bus.connected, true)
  broker.signal('SIGSTOP')
  bus.publish('close-test/out', 'never acknowledged', { qos: 1, retain: false })
  broker.signal('SIGKILL')
  await waitFor(() => !bus.connected, 30_000, 'the client to see its broker gone')
  let closed = false
  const closing = bus.close().then(() => { closed = true })
  // A liveness bound, far beyond the close's own grace: before the fix this never settled.
  await waitFor(() => closed, 60_000, 'the bus to close')
  await closing
})

test('while PUBACKs are held for the store, the next messages are read and handled; a released PUBACK reaches the broker, a held one does not', async () => {
  const broker = await startMosquitto(dir.path)
  cleanups.push(() => broker.stop())
  const held: { payload: string; ack: () => void }[] = []
  const bus = mqttHubBus({ url: broker.url, clientId: 'pipeline-test', log: silentLogger() })
  await bus.start({ 'pipeline-test/in': { qos: 1 } }, (_topic, payload, ack) => { held.push({ payload: payload.toString(), ack }) })
  const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
  cleanups.push(() => publisher.endAsync(true))
  const total = 10
  for (let i = 0; i < total; i++) await publisher.publishAsync('pipeline-test/in', `m${i}`, { qos: 1 })
  // Reading one message per PUBACK would stop at the first: all ten are handled while every PUBACK is held.
  await waitFor(() => held.length === total, 30_000, () => `all ${total} handled while held (${held.length})`)
  assert.deepEqual(held.map((h) => h.payload), Array.from({ length: total }, (_, i) => `m${i}`))
  // The first five are released; a clean close (its DISCONNECT goes out after those PUBACKs) keeps the session.
  for (const h of held.slice(0, 5)) h.ack()
  await bus.close()

  // The same session again: Mosquitto resends what was never acknowledged, and only that.
  const again: string[] = []
  const resumed = mqttHubBus({ url: broker.url, clientId: 'pipeline-test', log: silentLogger() })
  cleanups.push(() => resumed.close())
  await resumed.start({ 'pipeline-test/in': { qos: 1 } }, (_topic, payload, ack) => { again.push(payload.toString()); ack() })
  await waitFor(() => again.length >= 5, 30_000, () => `the five held messages resent (${again.join(', ')})`)
  assert.deepEqual(again.slice(0, 5), ['m5', 'm6', 'm7', 'm8', 'm9'])
})
