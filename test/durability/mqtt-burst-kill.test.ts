/**
 * kill -9 of the hub in the middle of a burst of QoS 1 submissions over MQTT
 * loses none that was acknowledged. This is the path the group commit
 * batches (issue #12): the embedded broker hands submissions to the
 * coordinator in-process, a turn's changes share one commit, and each PUBACK
 * waits for the commit that holds its task.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { topicsFor } from '../../src/contract/topics.js'
import type { TaskList } from '../../src/contract/http.js'
import { http, spawnHub, testConfig, testScope, waitFor, writeConfig } from '../helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')

test('kill -9 during a burst of 2,000 QoS 1 submissions: every acknowledged one is there after the restart', async () => {
  const file = writeConfig(dir.path, await testConfig(dir.path, { log: { level: 'info' } }))
  let hub = await spawnHub(file)
  cleanups.push(() => hub.kill())
  const producer = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'burst-producer', reconnectPeriod: 0 })
  producer.on('error', () => undefined)
  const total = 2000
  const acked = new Set<string>()
  for (let i = 0; i < total; i++) {
    const id = `burst-${i}`
    producer.publish(topics.taskSubmit, JSON.stringify({ id, type: 'general', content: { i } }), { qos: 1 }, (err) => { if (err === undefined || err === null) acked.add(id) })
  }
  await waitFor(() => acked.size >= 300, 120_000, 'the first 300 acknowledgements')
  await hub.kill('SIGKILL')
  producer.end(true)
  const atKill = acked.size

  hub = await spawnHub(file)
  const { counts } = (await http<TaskList>(hub.httpUrl, 'GET', '/tasks?limit=1')).body
  const stored = Object.values(counts).reduce((a, b) => a + b, 0)
  assert.ok(stored >= atKill, `at least the ${atKill} acknowledged tasks stored (${stored})`)
  const missing: string[] = []
  for (const id of acked) if ((await http(hub.httpUrl, 'GET', `/tasks/${id}`)).status !== 200) missing.push(id)
  assert.deepEqual(missing, [], `acknowledged before the kill but not stored (${atKill} acknowledged, ${stored} stored)`)
  console.log(`# ${atKill} of ${total} acknowledged at the kill, ${stored} stored after the restart`)
})
