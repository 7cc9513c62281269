/**
 * Ten computers released at the same instant against one bare repo: pushes
 * collide (only one lands per turn), the losers fetch, re-apply and retry;
 * every push eventually lands, nothing is lost and nothing arrives twice.
 * One broker, ten topic prefixes: ten bridges without full hubs, real git.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { ComputerMessage } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge, type Bridge } from '../../bridges/git/bridge.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, git, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()
const N = 10
const PER_PEER = 2

test('ten computers at once: zero lost, zero duplicated, every push lands', async () => {
  const remote = bareRepo(dir.path)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub')))
  cleanups.push(() => hub.stop())
  const ids = Array.from({ length: N }, (_, i) => String(i + 1))
  const recorders = await Promise.all(ids.map((n) => Recorder.start(hub.mqttUrl, [topicsFor(`c${n}`).anyComputerMessage])))
  for (const recorder of recorders) cleanups.push(() => recorder.stop())
  const bridges: Bridge[] = await Promise.all(ids.map(async (n) => startBridge(resolve(await testConfig(join(dir.path, `data-${n}`), {
    hub: { topicPrefix: `c${n}` },
    sync: syncSection({ computer: n, peers: ids.filter((p) => p !== n), remote, workdir: join(dir.path, `sync-${n}`), interval: '1h', retries: 6, backoff: ['50ms', '100ms', '200ms', '400ms'] }),
  })), { mqttUrl: hub.mqttUrl })))
  for (const bridge of bridges) cleanups.push(() => bridge.stop())
  // Start-up rounds collide too, and a bridge whose round failed retries soon: wait until every last round
  // succeeded, so the next timed round is an hour away and only this test's syncNow calls run rounds.
  await waitFor(() => bridges.every((b) => b.rounds.at(-1)?.ok === true), 60_000, 'first rounds')
  for (const [i, n] of ids.entries()) {
    const t = topicsFor(`c${n}`)
    for (const to of ids.filter((p) => p !== n)) {
      for (let k = 1; k <= PER_PEER; k++) await recorders[i]?.client.publishAsync(t.computerSend(to), JSON.stringify({ message: `${n}→${to} #${k}` }), { qos: 1 })
    }
  }
  await waitFor(() => bridges.every((b) => b.status().queued === (N - 1) * PER_PEER), 30_000, 'every message queued')

  // All at the same instant, then as many turns as it takes.
  const first = await Promise.all(bridges.map((b) => b.syncNow('test: all at once')))
  const collided = first.reduce((sum, r) => sum + r.attempts.filter((a) => a.outcome === 'rejected').length, 0)
  assert.ok(collided > 0, 'ten simultaneous pushes must have collided at least once')
  await waitFor(async () => {
    if (bridges.every((b) => b.status().queued === 0)) return true
    await Promise.all(bridges.map((b) => b.syncNow('test: again')))
    return false
  }, 90_000, 'every push to land')
  // Everyone reads everything: one more round each, one after another.
  for (const b of bridges) await b.syncNow('test: read')

  for (const [i, n] of ids.entries()) {
    const t = topicsFor(`c${n}`)
    for (const from of ids.filter((p) => p !== n)) {
      await recorders[i]?.waitFor(t.computerMessage(from), PER_PEER, 20_000)
      const got = recorders[i]?.json<ComputerMessage>(t.computerMessage(from)) ?? []
      assert.deepEqual(got.map((m) => m.message).sort(), Array.from({ length: PER_PEER }, (_, k) => `${from}→${n} #${k + 1}`), `${from} → ${n}`)
      assert.deepEqual(got.map((m) => m.seq), Array.from({ length: PER_PEER }, (_, k) => k + 1), `${from} → ${n}: in order, once`)
    }
  }
  // Every bridge's last commit landed: it is in the remote's history, and the last one to sync is its head.
  const history = new Set(git(remote, 'rev-list', 'main').trim().split('\n'))
  for (const b of bridges) assert.ok(history.has(git(join(b.workdir, 'repo'), 'rev-parse', 'HEAD').trim()), `computer ${b.computer}'s last commit is on the remote`)
  assert.equal(git(join(bridges.at(-1)?.workdir ?? '', 'repo'), 'rev-parse', 'HEAD').trim(), git(remote, 'rev-parse', 'main').trim())
})
