/**
 * Archiving keeps live message files bounded, and a computer that was away
 * while messages were archived still reads every one, once, in order.
 * Also: a topic in `sync.mirror` other than computer/+/send reaches every peer.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ComputerMessage } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge } from '../../bridges/git/bridge.js'
import { parseArchiveName, parseMessages } from '../../bridges/git/format.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, git, humanClone, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()
const RETENTION = 10

test('live files stay bounded; a reader that was away reads the archives; mirrored topics reach peers', async () => {
  const remote = bareRepo(dir.path)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub')))
  cleanups.push(() => hub.stop())
  const start = async (n: string, peer: string, mirror?: string[]): Promise<Awaited<ReturnType<typeof startBridge>>> => {
    const b = await startBridge(resolve(await testConfig(join(dir.path, `data-${n}`), {
      hub: { topicPrefix: `a${n}` },
      sync: { ...syncSection({ computer: n, peers: [peer], remote, workdir: join(dir.path, `sync-${n}`), interval: '1h', retention: RETENTION }), ...(mirror === undefined ? {} : { mirror }) },
    })), { mqttUrl: hub.mqttUrl })
    cleanups.push(() => b.stop())
    return b
  }
  const one = await start('1', '2', [topicsFor('a1').anyComputerSend, 'a1/alerts/#'])
  const sender = await Recorder.start(hub.mqttUrl, [])
  cleanups.push(() => sender.stop())
  let sent = 0
  for (let batch = 0; batch < 3; batch++) {
    for (let k = 0; k < 9; k++) {
      sent++
      await sender.client.publishAsync(topicsFor('a1').computerSend('2'), JSON.stringify({ id: `m${sent}`, message: `#${sent}` }), { qos: 1 })
    }
    await waitFor(() => one.status().queued === 9, 10_000, 'batch queued')
    assert.equal((await one.syncNow()).ok, true)
  }
  await sender.client.publishAsync('a1/alerts/disk', '{"free":"3%"}', { qos: 1 })
  await waitFor(() => one.status().queued === 1, 10_000, 'mirrored topic queued')
  assert.equal((await one.syncNow()).ok, true)

  const human = humanClone(remote, join(dir.path, 'human'))
  const live = parseMessages(readFileSync(join(human, 'coordination/messages/1_TO_2.md'), 'utf8')).messages
  assert.ok(live.length <= RETENTION, `live file holds ${live.length}`)
  const archives = readdirSync(join(human, 'coordination/messages/archive')).map((name) => parseArchiveName(name)).filter((a) => a !== undefined)
  assert.ok(archives.length >= 1)
  assert.equal(archives[0]?.firstSeq, 1)
  assert.equal(git(human, 'status', '--porcelain').trim(), '')

  // Computer 2 starts only now: everything before its live window is in archives.
  const receiver = await Recorder.start(hub.mqttUrl, [topicsFor('a2').computerMessage('1')])
  cleanups.push(() => receiver.stop())
  const two = await start('2', '1')
  await receiver.waitFor(topicsFor('a2').computerMessage('1'), sent + 1)
  await two.syncNow()
  const got = receiver.json<ComputerMessage>(topicsFor('a2').computerMessage('1'))
  assert.deepEqual(got.slice(0, sent).map((m) => m.message), Array.from({ length: sent }, (_, i) => `#${i + 1}`))
  assert.deepEqual(got.map((m) => m.seq), Array.from({ length: sent + 1 }, (_, i) => i + 1))
  const mirrored = got[sent]
  assert.deepEqual([mirrored?.topic, mirrored?.message], ['a1/alerts/disk', '{"free":"3%"}'])
})
