/**
 * MQTT over WebSocket: an MQTT.js client on ws://…/mqtt talks to a TCP client
 * through the same broker.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { registerMqttWebSocket, selectMqttSubprotocol } from '../../broker/websocket.js'
import { connect, nextMessage, startBroker, tcpUrl, topics } from './helpers.js'

test('a WebSocket client and a TCP client exchange messages', async (t) => {
  const broker = await startBroker(t)
  const app = Fastify()
  t.after(() => app.close())
  await registerMqttWebSocket(app, broker)
  await registerMqttWebSocket(app, broker) // a second call is a no-op
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  assert.ok(typeof address === 'object' && address !== null)

  const overWs = await connect(t, `ws://127.0.0.1:${address.port}/mqtt`)
  const overTcp = await connect(t, tcpUrl(broker))
  await overWs.subscribeAsync(topics.instanceInbox('web'), { qos: 1 })
  await overTcp.subscribeAsync(topics.instanceReport('web'), { qos: 1 })

  const toWs = nextMessage(overWs)
  await overTcp.publishAsync(topics.instanceInbox('web'), 'from tcp', { qos: 1 })
  assert.deepEqual(await toWs, { topic: topics.instanceInbox('web'), payload: 'from tcp' })

  const toTcp = nextMessage(overTcp)
  await overWs.publishAsync(topics.instanceReport('web'), 'from ws', { qos: 1 })
  assert.deepEqual(await toTcp, { topic: topics.instanceReport('web'), payload: 'from ws' })
  assert.equal(broker.connectedClients, 2)
})

test('the MQTT subprotocol is chosen, anything else refused', () => {
  assert.equal(selectMqttSubprotocol(new Set(['mqtt'])), 'mqtt')
  assert.equal(selectMqttSubprotocol(new Set(['chat', 'mqttv3.1'])), 'mqttv3.1')
  assert.equal(selectMqttSubprotocol(new Set(['chat'])), false)
})
