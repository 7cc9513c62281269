/**
 * SIGKILL of one NATS node while tasks flow (issue #13). The hub is on node 1;
 * the instance, an agent SDK given the URLs of nodes 2 and 3, is on node 2,
 * which is killed: no DISCONNECT, no Will (a client's Will dies with its
 * server on nats-server 2.9; the hub's health pings cover it). MQTT.js moves
 * to the next URL on its reconnect, and the instance's persistent session,
 * kept in JetStream streams replicated on all three nodes, is there: the
 * inbox frames queued meanwhile arrive, reports in flight are resent. What
 * must hold: every task the hub accepted (202) completes, with exactly one
 * completion (a handler may run twice: execution is at least once).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { connectAgent } from '../../src/agent/index.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startNatsCluster } from '../helpers/nats-cluster.js'
import { http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'

const { dir, cleanups } = testScope()
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

test('SIGKILL of the NATS node an instance is on, while tasks flow: it reconnects to another node, every accepted task completes exactly once', async (t) => {
  const cluster = await startNatsCluster(dir.path)
  cleanups.push(() => cluster.stop())
  const [n1, n2, n3] = cluster.nodes
  assert.ok(n1 !== undefined && n2 !== undefined && n3 !== undefined)
  const prefix = `nodeloss${process.pid}`
  const topics = topicsFor(prefix)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub'), {
    hub: { topicPrefix: prefix },
    broker: { mode: 'external', url: n1.mqttUrl, flavor: 'nats' },
    routes: { general: { targets: ['c1'] } },
  }))
  cleanups.push(() => hub.stop())

  // Events as node 1 (which stays up) delivers them: a second completion of a task would be a second event.
  const observer = await mqtt.connectAsync(n1.mqttUrl)
  cleanups.push(() => observer.endAsync())
  const completions = new Map<string, number>()
  observer.on('message', (_topic, payload) => {
    const event = JSON.parse(payload.toString()) as TaskRecord
    if (event.state === 'completed') completions.set(event.id, (completions.get(event.id) ?? 0) + 1)
  })
  await observer.subscribeAsync(topics.anyTaskEvent, { qos: 1 })

  const runs = new Map<string, number>()
  const agent = await connectAgent({
    id: 'c1', url: `${n2.mqttUrl},${n3.mqttUrl}`, prefix, handleSignals: false,
    handlers: {
      general: async (content, context) => {
        runs.set(context.taskId, (runs.get(context.taskId) ?? 0) + 1)
        await sleep(100)
        return { n: content }
      },
    },
  })
  // Bounded, and the bound unref'd: a drain that cannot say offline must not hold up the cleanups after it.
  cleanups.push(() => Promise.race([agent.drain(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]))
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 30_000, 'c1 online')

  const total = 60
  const killAt = 20
  const accepted: string[] = []
  for (let i = 0; i < total; i++) {
    const response = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'general', content: i })
    assert.equal(response.status, 202, JSON.stringify(response.body))
    accepted.push(response.body.id)
    if (i === killAt) {
      // Tasks are flowing (some done, the rest queued or in flight) when node 2 goes.
      await waitFor(() => completions.size >= 5, 30_000, () => `5 completions before the kill (${completions.size})`)
      await cluster.kill(1)
    }
    await sleep(20)
  }
  assert.equal(cluster.running(1), false)
  assert.ok(completions.size < total, 'some tasks were still to do when the node died')

  const unfinished = async (): Promise<string[]> => {
    const states = await Promise.all(accepted.map(async (id) => ({ id, state: (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body.state })))
    return states.filter((s) => s.state !== 'completed').map((s) => `${s.id}: ${s.state}`)
  }
  let left: string[] = accepted
  await waitFor(async () => (left = await unfinished()).length === 0, 120_000, () => `every accepted task completed; ${left.length} not: ${left.slice(0, 5).join(', ')}`)
  // The instance now talks to node 3: the only other URL it has.
  const connz = await (await fetch(`${n3.monitorUrl}/connz?subs=1`)).json() as { connections?: { mqtt_client?: string }[] }
  assert.ok(connz.connections?.some((c) => c.mqtt_client?.includes('-c1') === true), `c1 on node 3: ${JSON.stringify(connz.connections?.map((c) => c.mqtt_client))}`)
  // Events are QoS 0 from a hub on a node that stayed up: give a late duplicate its chance to show.
  await sleep(1000)
  for (const id of accepted) assert.equal(completions.get(id), 1, `task ${id}: ${completions.get(id) ?? 0} completions`)
  // Node 2 back on its ports and store: it rejoins, and the cluster carries on.
  await cluster.restart(1)
  const after = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'general', content: 'after the restart' })
  assert.equal(after.status, 202)
  await waitFor(async () => (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${after.body.id}`)).body.state === 'completed', 60_000, 'a task after node 2 rejoined')
  const reruns = [...runs.values()].filter((n) => n > 1).length
  t.diagnostic(`handlers run twice: ${reruns} of ${total}`)
})
