/**
 * Odd ids in topics the coordinator subscribes to (issue #14): a publish on
 * `trinity/instance/bad id!/report`, an instance id of 65 characters, a task
 * respond topic or a message topic whose ids break ID_PATTERN gets a reason
 * on `trinity/hub/errors` (the topic, what was expected), as a malformed
 * payload does, and the hub stays up.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { ID_PATTERN } from '../src/contract/constants.js'
import { topicsFor } from '../src/contract/topics.js'
import { http, startTestHub, testConfig, testScope, waitFor, watchHubErrors } from './helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')

test('a topic id that is not an id is refused with a reason on hub/errors', async () => {
  const hub = await startTestHub(await testConfig(dir.path))
  cleanups.push(() => hub.stop())
  const { client, errors } = await watchHubErrors(hub.mqttUrl, cleanups)
  const known = hub.coordinator.registry.all().map((i) => i.id)

  const long = 'a'.repeat(65)
  const odd = [
    { topic: 'trinity/instance/bad id!/report', bad: '"bad id!"', filter: topics.anyInstanceReport },
    { topic: `trinity/instance/${long}/status`, bad: `"${long}"`, filter: topics.anyInstanceStatus },
    { topic: 'trinity/instance/-dash/heartbeat', bad: '"-dash"', filter: topics.anyInstanceHeartbeat },
    { topic: 'trinity/task/t 1/respond', bad: '"t 1"', filter: topics.anyTaskRespond },
    { topic: 'trinity/message/ok/n%t', bad: '"n%t"', filter: topics.anyMessage },
  ]
  for (const { topic } of odd) await client.publishAsync(topic, JSON.stringify({ state: 'online', session: 1 }), { qos: 1 })
  // mosquitto_pub too: any client's publish is answered, not only MQTT.js's. Async: the hub runs in this
  // process and must keep serving while mosquitto_pub waits for its PUBACK.
  await promisify(execFile)('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(new URL(hub.mqttUrl).port), '-q', '1', '-t', 'trinity/instance/sp ace/status', '-m', '{}'])
  odd.push({ topic: 'trinity/instance/sp ace/status', bad: '"sp ace"', filter: topics.anyInstanceStatus })

  await waitFor(() => odd.every(({ topic }) => errors.some((e) => e.topic === topic)), 30_000, `a refusal for each odd topic (have ${errors.map((e) => e.topic).join(' | ')})`)
  for (const { topic, bad, filter } of odd) {
    const refusal = errors.find((e) => e.topic === topic)
    assert.equal(refusal?.code, 'TRINITY_ERR_BAD_TOPIC', topic)
    assert.ok(refusal?.reason.startsWith(`topic: ${bad} in ${filter} is not an id: expected ${ID_PATTERN}`), refusal?.reason)
  }
  // Nothing joined under an odd id, and the hub still answers.
  assert.deepEqual(hub.coordinator.registry.all().map((i) => i.id), known)
  assert.equal((await http(hub.httpUrl, 'GET', '/health')).status, 200)
})
