/**
 * Upgrading from a hub whose coordinator was an MQTT client with a
 * persistent session (before issue #12) to the in-process coordinator: what
 * the old broker journal queued for that session, acknowledged submissions
 * the old coordinator never read, becomes tasks, and completes.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt from 'mqtt'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { startEmbeddedBroker } from '../../broker/embedded.js'
import { topicsFor } from '../../src/contract/topics.js'
import { clientIds } from '../../src/net/client-ids.js'
import { silentLogger } from '../../src/log.js'
import { TestInstance } from '../helpers/instance.js'
import { http, spawnHub, testConfig, testScope, waitFor, writeConfig } from '../helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')

test('submissions queued in an older hub\'s coordinator session are handed to the in-process coordinator and complete', async () => {
  const dataDir = `${dir.path}/data`
  // The old hub's broker journal: the coordinator's persistent session, subscribed, then away while
  // three submissions were acknowledged to their publisher.
  const old = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, persistence: 'disk', dataDir, auth: { enabled: false, users: [] }, topics, logger: silentLogger() })
  const url = `mqtt://127.0.0.1:${old.port}`
  const session = await mqtt.connectAsync(url, { clientId: clientIds.coordinator(topics.prefix), clean: false, reconnectPeriod: 0 })
  await session.subscribeAsync(topics.taskSubmit, { qos: 1 })
  await session.endAsync()
  const producer = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
  const ids = ['old-1', 'old-2', 'old-3']
  for (const id of ids) await producer.publishAsync(topics.taskSubmit, JSON.stringify({ id, type: 'general', content: id }), { qos: 1 })
  await producer.endAsync()
  await old.close()

  const hub = await spawnHub(writeConfig(dir.path, await testConfig(dataDir, { instances: [{ id: 'c1' }], log: { level: 'info' } })))
  cleanups.push(() => hub.kill())
  assert.match(hub.output(), /handing what an older hub queued for its coordinator session/)
  const worker = await TestInstance.start({ url: hub.mqttUrl, id: 'c1' })
  cleanups.push(() => worker.close())
  for (const id of ids) {
    await waitFor(async () => (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body.state === 'completed', 60_000, `${id} completed`)
  }
})
