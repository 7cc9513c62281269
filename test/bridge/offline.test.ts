/** A peer that stops syncing is shown OFFLINE once its status file is older than 3 intervals, not before. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { ComputerStatus } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge } from '../../bridges/git/bridge.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()
// Long enough that a round slowed down by a loaded machine never leaves a live peer's file 3 intervals old.
const INTERVAL = 1500

test('a peer that stops syncing turns OFFLINE after 3 intervals', async () => {
  const remote = bareRepo(dir.path)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub')))
  cleanups.push(() => hub.stop())
  const start = async (n: string, peer: string): Promise<Awaited<ReturnType<typeof startBridge>>> => {
    const b = await startBridge(resolve(await testConfig(join(dir.path, `data-${n}`), {
      hub: { topicPrefix: `o${n}` },
      sync: syncSection({ computer: n, peers: [peer], remote, workdir: join(dir.path, `sync-${n}`), interval: `${INTERVAL}ms`, jitter: '0ms' }),
    })), { mqttUrl: hub.mqttUrl })
    cleanups.push(() => b.stop())
    return b
  }
  const watcher = await Recorder.start(hub.mqttUrl, [topicsFor('o1').computerStatus('2')])
  cleanups.push(() => watcher.stop())
  const one = await start('1', '2')
  const two = await start('2', '1')
  const seen = (): (ComputerStatus & { at: number })[] => watcher.on(topicsFor('o1').computerStatus('2')).map((r) => ({ ...(JSON.parse(r.payload) as ComputerStatus), at: r.at }))
  await waitFor(() => seen().some((s) => s.state !== 'OFFLINE'), 60_000, 'computer 2 seen alive')
  await two.stop()
  const stoppedAt = Date.now()
  await waitFor(() => seen().at(-1)?.state === 'OFFLINE', 60_000, 'computer 2 shown OFFLINE')
  const offline = seen().filter((s) => s.state === 'OFFLINE' && s.updated !== null)
  assert.ok(offline.length > 0)
  for (const s of offline) {
    const age = s.at - Date.parse(s.updated ?? '')
    assert.ok(age > 3 * INTERVAL, `shown OFFLINE when its file was only ${age} ms old`)
  }
  // Until then it was shown as it said it was.
  assert.ok(seen().filter((s) => s.at < stoppedAt).every((s) => s.state !== 'OFFLINE' || s.updated === null))
  assert.ok(one.rounds.every((r) => r.ok), JSON.stringify(one.rounds.filter((r) => !r.ok)))
})
