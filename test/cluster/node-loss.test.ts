/**
 * SIGKILL of a NATS node under load, with the task store in JetStream KV
 * (issue #13): two `trinity hub` processes (leader and standby) whose MQTT
 * and store connections are on node 1 first, a worker (the agent SDK) on
 * nodes 2 and 3, and 600 HTTP submissions; node 1 is killed after 200 are
 * acknowledged. The hubs move to node 3 (MQTT) and the other nodes (NATS);
 * whichever hub leads afterwards has every acknowledged task, once, and
 * completes it; no task shows two completions.
 *
 * Losing the node that leads the lease's stream can cost the leader its 3 s
 * lease on a loaded machine: then it is deposed (exit 3) and the standby takes
 * over. The hubs run as a service manager runs them, started again when they
 * exit (README, Operations: a cluster), so a deposed hub comes back as a
 * standby; the test prints how many times each exited.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { natsClusterScope } from '../helpers/nats-cluster.js'
import { waitFor } from '../helpers/hub.js'
import { clusterHubConfig, hubHealth, keepHubRunning, submitUntilAccepted, watchCompletions } from '../helpers/cluster-hubs.js'
import { connectAgent } from '../../src/agent/index.js'

const { dir, cleanups, started } = natsClusterScope()

const PREFIX = 'nl'
const TOTAL = 600

test('SIGKILL of the NATS node the hubs are on, during 600 submissions: they move to the others, every acknowledged task completes once', async (t) => {
  const cluster = started()
  const nodes = cluster.nodes
  const a = await keepHubRunning(await clusterHubConfig(cluster, dir.path, 'hub-a', PREFIX))
  cleanups.push(() => a.stop())
  await waitFor(async () => (await hubHealth(a.httpUrl))?.role === 'leader', 60_000, () => `hub a to lead:\n${a.output()}`)
  const b = await keepHubRunning(await clusterHubConfig(cluster, dir.path, 'hub-b', PREFIX))
  cleanups.push(() => b.stop())
  const urls = [a.httpUrl, b.httpUrl]
  const leader = async (): Promise<string | undefined> => {
    for (const url of urls) if ((await hubHealth(url))?.role === 'leader') return url
    return undefined
  }

  // A worker as a user writes one: the agent SDK, given two nodes, reconnects to the other if one drops it.
  const worker = await connectAgent({
    id: 'w1', url: `${nodes[1]!.mqttUrl},${nodes[2]!.mqttUrl}`, prefix: PREFIX, concurrency: 32, handleSignals: false,
    handlers: { analyze: (content) => Promise.resolve({ done: content }) },
  })
  // Bounded, and the bound unref'd: a drain that cannot say offline must not hold up the cleanups after it.
  cleanups.push(() => Promise.race([worker.drain(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]))
  const { completions, close: closeWatch } = await watchCompletions(nodes[1]!.mqttUrl, PREFIX)
  cleanups.push(closeWatch)

  const acknowledged: string[] = []
  let killed: Promise<void> | undefined
  for (let i = 0; i < TOTAL; i += 10) {
    await Promise.all(Array.from({ length: 10 }, async (_, k) => {
      const id = `t-${i + k}`
      await submitUntilAccepted(urls, id)
      acknowledged.push(id)
    }))
    if (killed === undefined && acknowledged.length >= TOTAL / 3) killed = cluster.kill(0)
  }
  await killed
  assert.equal(cluster.running(0), false, 'node 1 was killed during the burst')

  let leading: string | undefined
  const pending = new Set(acknowledged)
  await waitFor(async () => {
    leading = await leader()
    if (leading === undefined) return false
    try {
      for (const id of [...pending]) {
        const response = await fetch(`${leading}/tasks/${id}`)
        if (response.status !== 200) { await response.text(); continue }
        if (((await response.json()) as TaskRecord).state === 'completed') pending.delete(id)
      }
    } catch {
      // The leader went (it may step down, should it not renew its lease in time): ask again who leads.
      return false
    }
    return pending.size === 0
  }, 180_000, () => `every acknowledged task completed: ${pending.size} of ${acknowledged.length} not yet\nhub a:\n${a.output().slice(-2000)}\nhub b:\n${b.output().slice(-2000)}`)
  const list = await fetch(`${leading}/tasks?limit=1`).then((r) => r.json()) as { counts: Record<string, number> }
  assert.equal(list.counts['completed'], TOTAL, `exactly the ${TOTAL} tasks, each once: ${JSON.stringify(list.counts)}`)
  await submitUntilAccepted(urls, 'sentinel')
  await waitFor(() => completions.has('sentinel'), 60_000, 'the sentinel task\'s completed event')
  assert.deepEqual([...completions].filter(([, n]) => n > 1), [], 'no task has two applied completions')
  t.diagnostic(`after the node loss hub ${leading === a.httpUrl ? 'a' : 'b'} leads; hub a exited ${a.exits.length} times ${JSON.stringify(a.exits)}, hub b ${b.exits.length} ${JSON.stringify(b.exits)}; completed events seen: ${completions.size - 1} of ${TOTAL}`)
})
