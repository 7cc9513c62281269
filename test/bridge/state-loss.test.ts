/**
 * A computer whose bridge workdir is lost (disk replaced, directory deleted)
 * starts over from the repository: its own status file there says what it had
 * read, so nothing is published twice, and new messages still arrive.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { ComputerMessage } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge, type Bridge } from '../../bridges/git/bridge.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()

test('a lost workdir does not republish what was already read', async () => {
  const remote = bareRepo(dir.path)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub')))
  cleanups.push(() => hub.stop())
  const start = async (n: string, peer: string): Promise<Bridge> => {
    const b = await startBridge(resolve(await testConfig(join(dir.path, `data-${n}`), {
      hub: { topicPrefix: `l${n}` },
      sync: syncSection({ computer: n, peers: [peer], remote, workdir: join(dir.path, `sync-${n}`), interval: '1h' }),
    })), { mqttUrl: hub.mqttUrl })
    cleanups.push(() => b.stop())
    return b
  }
  const one = await start('1', '2')
  let two = await start('2', '1')
  await waitFor(() => one.rounds.at(-1)?.ok === true && two.rounds.at(-1)?.ok === true, 20_000, 'first rounds')
  const bus = await Recorder.start(hub.mqttUrl, [topicsFor('l2').computerMessage('1')])
  cleanups.push(() => bus.stop())
  const send = async (from: number, to: number): Promise<void> => {
    for (let k = from; k <= to; k++) await bus.client.publishAsync(topicsFor('l1').computerSend('2'), JSON.stringify({ id: `m${k}`, message: `#${k}` }), { qos: 1 })
    await waitFor(() => one.status().queued === to - from + 1, 10_000, 'queued')
    await one.syncNow()
  }
  await send(1, 3)
  await two.syncNow()
  assert.equal(bus.received.length, 3)
  await two.stop()
  rmSync(two.workdir, { recursive: true, force: true })

  await send(4, 5)
  two = await start('2', '1')
  await bus.waitFor(topicsFor('l2').computerMessage('1'), 5)
  await two.syncNow()
  assert.deepEqual(bus.json<ComputerMessage>(topicsFor('l2').computerMessage('1')).map((m) => m.id), ['m1', 'm2', 'm3', 'm4', 'm5'])
})
