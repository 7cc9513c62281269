/**
 * A paused leader cannot write (issue #13), with real `trinity hub`
 * processes on a 3-node NATS cluster. The leader holds three tasks assigned
 * to a worker that does not answer, and is SIGSTOPped past both its leader
 * lease and those tasks' leases. The standby takes over, takes the tasks back
 * when their leases run out, and the worker completes them for it. Then
 * SIGCONT wakes the old leader, which would now take the same tasks back
 * itself: it must write nothing (its store refuses every write once its
 * lease's deadline has passed, before any round trip; the task bucket's last
 * sequence is the proof) and step down, exiting with code 3. The new leader's
 * records are intact.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'nats'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { bucketPrefixFor, streamFor } from '../../src/coordinator/nats-kv.js'
import { natsClusterScope } from '../helpers/nats-cluster.js'
import { spawnHub, waitFor } from '../helpers/hub.js'
import { clusterHubConfig, hubHealth, submitUntilAccepted } from '../helpers/cluster-hubs.js'
import { TestInstance } from '../helpers/instance.js'

const { dir, cleanups, started } = natsClusterScope()

const PREFIX = 'ps'
const IDS = ['stuck-0', 'stuck-1', 'stuck-2']

async function task(url: string, id: string): Promise<TaskRecord | undefined> {
  const response = await fetch(`${url}/tasks/${id}`)
  if (response.status !== 200) { await response.text(); return undefined }
  return (await response.json()) as TaskRecord
}

test('a leader SIGSTOPped past its lease and woken by SIGCONT writes nothing and steps down (exit code 3); the new leader\'s tasks are intact', async (t) => {
  const cluster = started()
  const nodes = cluster.nodes
  const config = (name: string): Promise<string> => clusterHubConfig(cluster, dir.path, name, PREFIX, { taskLease: '4s' })
  const a = await spawnHub(await config('hub-a'))
  cleanups.push(() => a.kill())
  await waitFor(async () => (await hubHealth(a.httpUrl))?.role === 'leader', 60_000, () => `hub a to lead:\n${a.output()}`)
  const b = await spawnHub(await config('hub-b'))
  cleanups.push(() => b.kill())
  assert.equal((await hubHealth(b.httpUrl))?.role, 'standby')

  // A worker that takes tasks and says nothing until told.
  const worker = await TestInstance.start({ url: nodes[1]!.mqttUrl, id: 'w1', prefix: PREFIX, capabilities: ['analyze'], concurrency: 8, heartbeatMs: 500, manual: true })
  cleanups.push(() => worker.close())
  for (const id of IDS) await submitUntilAccepted([a.httpUrl], id)
  await worker.waitForTasks(IDS.length, 60_000)
  await waitFor(async () => (await Promise.all(IDS.map((id) => task(a.httpUrl, id)))).every((r) => r?.state === 'assigned'), 60_000, 'the tasks assigned by hub a')

  const exited = new Promise<number | null>((resolve) => a.child.once('exit', (code) => resolve(code)))
  a.child.kill('SIGSTOP')
  let lastSeq: number
  const nc = await connect({ servers: nodes.map((n) => n.natsUrl) })
  cleanups.push(() => nc.close())
  const taskStream = streamFor(`${bucketPrefixFor(PREFIX)}_tasks`)
  try {
    await waitFor(async () => (await hubHealth(b.httpUrl))?.role === 'leader', 60_000, () => `hub b to lead while a is paused:\n${b.output()}`)
    // Hub b takes the tasks back once their leases (4 s) run out, and assigns them again: the worker answers this time.
    await worker.waitForTasks(2 * IDS.length, 60_000)
    for (const received of worker.received.slice(IDS.length)) {
      await worker.report({ taskId: received.id, leaseToken: received.leaseToken, state: 'completed', output: { by: 'b' } })
    }
    await waitFor(async () => (await Promise.all(IDS.map((id) => task(b.httpUrl, id)))).every((r) => r?.state === 'completed'), 60_000, 'the tasks completed on hub b')
    // Hub b is idle now: every write to the task bucket from here on would be hub a's.
    const jsm = await nc.jetstreamManager()
    lastSeq = (await jsm.streams.info(taskStream)).state.last_seq
  } finally {
    a.child.kill('SIGCONT')
  }
  const before = await Promise.all(IDS.map((id) => task(b.httpUrl, id)))

  // Woken, the old leader would take its expired assignments back; its lease is gone: it stops, and says why.
  const code = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 60_000))])
  assert.equal(code, 3, `hub a exits with code 3 once woken:\n${a.output().slice(-3000)}`)
  assert.match(a.output(), /no longer the leader/)
  const jsm = await nc.jetstreamManager()
  assert.equal((await jsm.streams.info(taskStream)).state.last_seq, lastSeq, `hub a wrote nothing to the task bucket after it woke:\n${a.output().slice(-3000)}`)
  t.diagnostic(/the store refused the write/.test(a.output()) ? 'hub a tried to write and was refused by its fence' : 'hub a stepped down before it tried to write')

  assert.equal((await hubHealth(b.httpUrl))?.role, 'leader', 'the new leader still leads')
  const after = await Promise.all(IDS.map((id) => task(b.httpUrl, id)))
  assert.deepEqual(after, before, 'the new leader\'s tasks are as it left them')
  for (const record of after) assert.deepEqual(record?.result, { by: 'b' })
})
