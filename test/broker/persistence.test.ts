/**
 * Disk persistence: a persistent session's queued QoS 1 message survives a
 * broker restart on the same data directory.
 */
import assert from 'node:assert/strict'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { startEmbeddedBroker } from '../../broker/embedded.js'
import { silentLogger } from '../../src/log.js'
import { connect, nextMessage, tcpUrl, tempDir, topics } from './helpers.js'

test('a queued message for a persistent session survives a broker restart', async (t) => {
  const dataDir = await tempDir(t)
  const options = {
    host: '127.0.0.1', port: 0, persistence: 'disk', dataDir,
    auth: { enabled: false, users: [] }, topics, logger: silentLogger(),
  } as const
  const topic = topics.instanceInbox('keeper')
  const session = { clientId: 'persist-sub', clean: false } as const

  const first = await startEmbeddedBroker(options)
  t.after(() => first.close())
  const subscriber = await connect(t, tcpUrl(first), session)
  await subscriber.subscribeAsync(topic, { qos: 1 })
  await subscriber.endAsync()

  const publisher = await connect(t, tcpUrl(first))
  await publisher.publishAsync(topic, 'kept across restarts', { qos: 1 })
  await publisher.endAsync()
  await first.close()
  assert.ok((await stat(join(dataDir, 'broker.db'))).isFile(), 'the session lives in the data directory')

  const second = await startEmbeddedBroker(options)
  t.after(() => second.close())
  // Listen before the CONNACK: the queued message follows it immediately.
  const returning = mqtt.connect(tcpUrl(second), { ...session, reconnectPeriod: 0 })
  t.after(() => returning.endAsync(true))
  const message = nextMessage(returning)
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    returning.once('connect', resolve)
    returning.once('error', reject)
  })
  assert.equal(connack.sessionPresent, true)
  assert.deepEqual(await message, { topic, payload: 'kept across restarts' })
})

test('close() is idempotent and releases the store for the next broker', async (t) => {
  const dataDir = await tempDir(t)
  const options = {
    host: '127.0.0.1', port: 0, persistence: 'disk', dataDir,
    auth: { enabled: false, users: [] }, topics, logger: silentLogger(),
  } as const
  const broker = await startEmbeddedBroker(options)
  await Promise.all([broker.close(), broker.close()])
  await broker.close()
  const again = await startEmbeddedBroker(options)
  await again.close()
})
