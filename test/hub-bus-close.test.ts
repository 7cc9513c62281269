/**
 * The coordinator's MQTT bus (src/coordinator/hub-bus.ts) closes even when a
 * QoS 1 publish is in flight and the broker is gone: MQTT.js's graceful end
 * would wait for that PUBACK for ever, and a deposed cluster hub, whose stop
 * awaits this close, never exited (issue #13). Real Mosquitto: SIGSTOP, so
 * the publish gets no PUBACK, then SIGKILL, so the client is reconnecting.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
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
