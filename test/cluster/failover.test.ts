/**
 * Hub failover on a 3-node NATS JetStream cluster (issue #13), with real
 * processes: two `trinity hub` processes on `store.backend: nats-kv` and
 * `broker.flavor: nats`, one leading, one standby; a worker on another node.
 *
 * The leader is SIGKILLed during a burst of 2,000 submissions, half over MQTT
 * (QoS 1: acknowledged by the broker's PUBACK, into the coordinator's
 * persistent session) and half over HTTP (acknowledged by a 2xx). A client
 * whose hub is gone sends again, to the other hub, with the same id (an
 * idempotent retry), as a client of a cluster does. Then:
 * - the standby takes over (its /health says leader) and every acknowledged
 *   task is there, exactly once, and completes;
 * - no task shows two applied completions (two `completed` events);
 * - the takeover time is reported as a diagnostic (a figure, not an assertion).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { topicsFor } from '../../src/contract/topics.js'
import { natsClusterScope } from '../helpers/nats-cluster.js'
import { spawnHub, waitFor, type HubProcess } from '../helpers/hub.js'
import { clusterHubConfig, hubHealth, submitUntilAccepted, watchCompletions } from '../helpers/cluster-hubs.js'
import { TestInstance } from '../helpers/instance.js'

const { dir, cleanups, started } = natsClusterScope()
const hubs: HubProcess[] = []
after(async () => { for (const h of hubs) await h.kill() })

const PREFIX = 'fo'
const topics = topicsFor(PREFIX)

const hubConfig = (name: string): Promise<string> => clusterHubConfig(started(), dir.path, name, PREFIX)

test('SIGKILL of the leader during 2,000 mixed submissions: the standby takes over, every acknowledged task is there once and completes, none completes twice', async (t) => {
  const nodes = started().nodes
  const a = await spawnHub(await hubConfig('hub-a'))
  hubs.push(a)
  await waitFor(async () => (await hubHealth(a.httpUrl))?.role === 'leader', 60_000, () => `hub a to lead:\n${a.output()}`)
  const b = await spawnHub(await hubConfig('hub-b'))
  hubs.push(b)
  const standby = await hubHealth(b.httpUrl)
  assert.equal(standby?.role, 'standby', JSON.stringify(standby))
  assert.equal(standby?.leader, a.httpUrl, 'the standby names the leader')
  const redirected = await fetch(`${b.httpUrl}/tasks?limit=1`, { redirect: 'manual' })
  assert.equal(redirected.status, 307)
  assert.equal(redirected.headers.get('location'), `${a.httpUrl}/tasks?limit=1`)
  await redirected.text()

  const ran = new Map<string, number>()
  const worker = await TestInstance.start({
    url: nodes[1]!.mqttUrl, id: 'w1', prefix: PREFIX, capabilities: ['analyze'], concurrency: 64, heartbeatMs: 500,
    handler: (task) => { ran.set(task.id, (ran.get(task.id) ?? 0) + 1); return { ok: task.id } },
  })
  cleanups.push(() => worker.close())

  const { completions, close: closeWatch } = await watchCompletions(nodes[1]!.mqttUrl, PREFIX)
  cleanups.push(closeWatch)

  const producer = await mqtt.connectAsync(nodes[1]!.mqttUrl, { clientId: 'fo-producer', clean: false, reconnectPeriod: 500 })
  cleanups.push(() => producer.endAsync(true))
  const acknowledged: string[] = []
  const TOTAL = 2000
  let killedAt = 0
  let tookOver: Promise<number> | undefined
  const kill = (): void => {
    if (killedAt !== 0) return
    killedAt = performance.now()
    void a.kill('SIGKILL')
    // From the kill on, the standby's /health is watched: when it says leader is the takeover's end.
    tookOver = (async () => {
      while ((await hubHealth(b.httpUrl))?.role !== 'leader') await new Promise((r) => setTimeout(r, 50))
      return performance.now() - killedAt
    })()
  }
  const mqttSide = (async () => {
    for (let i = 0; i < TOTAL / 2; i++) {
      const id = `m-${i}`
      await producer.publishAsync(topics.taskSubmit, JSON.stringify({ id, type: 'analyze', content: { n: id } }), { qos: 1 })
      acknowledged.push(id)
      if (acknowledged.length === TOTAL / 4) kill()
    }
  })()
  const httpSide = (async () => {
    const urls = [a.httpUrl, b.httpUrl]
    // A few at a time, as several clients would.
    for (let i = 0; i < TOTAL / 2; i += 10) {
      await Promise.all(Array.from({ length: 10 }, async (_, k) => {
        const id = `h-${i + k}`
        await submitUntilAccepted(urls, id)
        acknowledged.push(id)
      }))
      if (acknowledged.length >= TOTAL / 4) kill()
    }
  })()
  await Promise.all([mqttSide, httpSide])
  assert.ok(killedAt > 0, 'the leader was killed during the burst')

  await waitFor(async () => (await hubHealth(b.httpUrl))?.role === 'leader', 60_000, () => `hub b to lead after the kill:\n${b.output()}`)
  t.diagnostic(`takeover: ${Math.round(await (tookOver ?? Promise.resolve(NaN)))} ms from the SIGKILL until the standby's /health said leader (lease 3 s, polled every 50 ms)`)

  const pending = new Set(acknowledged)
  await waitFor(async () => {
    for (const id of [...pending]) {
      const response = await fetch(`${b.httpUrl}/tasks/${id}`)
      if (response.status !== 200) { await response.text(); continue }
      const task = (await response.json()) as TaskRecord
      if (task.state === 'completed') pending.delete(id)
    }
    return pending.size === 0
  }, 180_000, () => `every acknowledged task completed on the new leader: ${pending.size} of ${acknowledged.length} not yet (${[...pending].slice(0, 5).join(', ')}…)\n${b.output().slice(-3000)}`)

  const list = await fetch(`${b.httpUrl}/tasks?limit=1000&state=completed`).then((r) => r.json()) as { counts: Record<string, number> }
  assert.equal(list.counts['completed'], TOTAL, `exactly the ${TOTAL} tasks, each once: ${JSON.stringify(list.counts)}`)
  // Events leave the leader in order: once a last task's completion is seen, every earlier one it published is.
  await submitUntilAccepted([b.httpUrl], 'sentinel')
  await waitFor(() => completions.has('sentinel'), 60_000, 'the sentinel task\'s completed event')
  const twice = [...completions].filter(([, n]) => n > 1)
  assert.deepEqual(twice, [], 'no task has two applied completions')
  // Events are QoS 0 (docs/topics.md): one published by the killed leader may be lost with its socket.
  t.diagnostic(`completed events seen: ${completions.size - 1} of ${TOTAL}`)
  const reruns = [...ran.values()].filter((n) => n > 1).length
  t.diagnostic(`tasks the worker ran more than once (at least once execution): ${reruns} of ${TOTAL}`)
})
