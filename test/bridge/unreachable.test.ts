/**
 * The remote unreachable (its bare repo renamed away) for several rounds,
 * then back: the outgoing queue waits on disk, the rounds back off on the
 * configured schedule, the status says why, and once the remote returns the
 * queue is delivered, each message once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renameSync } from 'node:fs'
import { join } from 'node:path'
import type { BridgeStatus, ComputerMessage } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge } from '../../bridges/git/bridge.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()
const BACKOFF = [100, 200, 400]
const INTERVAL = 1000

test('remote unreachable for several rounds, then back: backoff observed, the queue delivered once', async () => {
  const remote = bareRepo(dir.path)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub')))
  cleanups.push(() => hub.stop())
  const config = async (n: string, peer: string): Promise<ReturnType<typeof resolve>> => resolve(await testConfig(join(dir.path, `data-${n}`), {
    hub: { topicPrefix: `u${n}` },
    sync: syncSection({ computer: n, peers: [peer], remote, workdir: join(dir.path, `sync-${n}`), interval: `${INTERVAL}ms`, jitter: '0ms', retries: 2, backoff: BACKOFF.map((ms) => `${ms}ms`) }),
  }))
  const one = await startBridge(await config('1', '2'), { mqttUrl: hub.mqttUrl })
  cleanups.push(() => one.stop())
  const two = await startBridge(await config('2', '1'), { mqttUrl: hub.mqttUrl })
  cleanups.push(() => two.stop())
  const sender = await Recorder.start(hub.mqttUrl, [topicsFor('u1').bridgeStatus])
  cleanups.push(() => sender.stop())
  const receiver = await Recorder.start(hub.mqttUrl, [topicsFor('u2').computerMessage('1')])
  cleanups.push(() => receiver.stop())
  await waitFor(() => one.rounds.some((r) => r.ok) && two.rounds.some((r) => r.ok), 20_000, 'first rounds')

  // Rename between rounds (the next is an interval away), so every round counted below ran without the remote.
  await one.syncNow('test: settle')
  renameSync(remote, `${remote}.away`)
  const failedBefore = one.rounds.length
  for (let k = 1; k <= 6; k++) await sender.client.publishAsync(topicsFor('u1').computerSend('2'), JSON.stringify({ message: `while away #${k}` }), { qos: 1 })
  await one.syncNow('test: remote gone')
  // Four failed rounds in a row: three on the backoff schedule, then the interval.
  await waitFor(() => one.rounds.slice(failedBefore).filter((r) => !r.ok).length >= 5, 20_000, 'five failed rounds')
  const failed = one.rounds.slice(failedBefore)
  assert.ok(failed.slice(0, 5).every((r) => !r.ok && r.error !== null && /does not appear to be a git repository|not found|No such file/i.test(r.error)), JSON.stringify(failed.map((r) => r.error)))
  const gaps = failed.slice(0, 5).map((r, i, all) => (i === 0 ? 0 : r.startedAt - (all[i - 1]?.endedAt ?? 0))).slice(1)
  const expected = [...BACKOFF, INTERVAL]
  for (const [i, gap] of gaps.entries()) assert.ok(gap >= (expected[i] ?? 0) - 5, `gap ${i + 1} was ${gap} ms, the schedule says ≥ ${expected[i]} ms (gaps ${gaps.join(', ')})`)
  const status = one.status()
  assert.equal(status.state, 'ERROR')
  assert.equal(status.queued, 6)
  assert.match(status.lastError ?? '', /git repository|not found|No such file/i)
  const published = sender.json<BridgeStatus>(topicsFor('u1').bridgeStatus)
  assert.ok(published.some((s) => s.state === 'ERROR' && s.queued === 6), 'the retained bridge status showed the error and the queue')
  assert.equal(receiver.received.length, 0)

  renameSync(`${remote}.away`, remote)
  await waitFor(() => one.status().queued === 0, 20_000, 'queue pushed after the remote came back')
  await two.syncNow('test: read')
  await receiver.waitFor(topicsFor('u2').computerMessage('1'), 6)
  await two.syncNow('test: read again')
  await one.syncNow('test: receipts')
  const got = receiver.json<ComputerMessage>(topicsFor('u2').computerMessage('1'))
  assert.deepEqual(got.map((m) => m.message), [1, 2, 3, 4, 5, 6].map((k) => `while away #${k}`))
  assert.equal(one.status().state, 'IDLE')
  assert.equal(one.status().awaitingReceipt, 0)
})
