/**
 * The shared repo holds only what peers are meant to read (issue #14): a
 * `computer/{n}/send` for a computer not in `sync.peers` is dropped with a
 * reason on `hub/errors`, and no `{me}_TO_{n}.md` is written; a peer's message
 * in the same round is.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { HubError } from '../../src/contract/payloads/hub.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge } from '../../bridges/git/bridge.js'
import { messageFileName } from '../../bridges/git/format.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, humanClone, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()

test('a message for a computer that is not a peer never reaches the shared repo', async () => {
  const remote = bareRepo(dir.path)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub')))
  cleanups.push(() => hub.stop())
  const topics = topicsFor('np1')
  const bridge = await startBridge(resolve(await testConfig(join(dir.path, 'data-1'), {
    hub: { topicPrefix: 'np1' },
    sync: syncSection({ computer: '1', peers: ['2'], remote, workdir: join(dir.path, 'sync-1'), interval: '1h' }),
  })), { mqttUrl: hub.mqttUrl })
  cleanups.push(() => bridge.stop())
  await waitFor(() => bridge.rounds.at(-1)?.ok === true, 30_000, 'first round')
  const bus = await Recorder.start(hub.mqttUrl, [topics.hubErrors])
  cleanups.push(() => bus.stop())

  await bus.client.publishAsync(topics.computerSend('3'), JSON.stringify({ id: 'stranger', message: 'for nobody here' }), { qos: 1 })
  await bus.client.publishAsync(topics.computerSend('2'), JSON.stringify({ id: 'peer', message: 'for 2' }), { qos: 1 })
  await waitFor(() => bridge.status().queued === 1, 30_000, 'the peer message queued')
  await bus.waitFor(topics.hubErrors, 1)
  const refusal = bus.json<HubError>(topics.hubErrors)[0]
  assert.equal(refusal?.topic, topics.computerSend('3'))
  assert.equal(refusal?.code, 'TRINITY_ERR_RECIPIENT_UNKNOWN')
  assert.match(refusal?.reason ?? '', /computer 3 is not in sync\.peers \(2\)/)
  await bridge.syncNow()
  assert.equal(bridge.rounds.at(-1)?.ok, true)

  const clone = humanClone(remote, join(dir.path, 'look'))
  assert.match(readFileSync(join(clone, messageFileName('1', '2')), 'utf8'), /for 2/)
  assert.equal(existsSync(join(clone, messageFileName('1', '3'))), false)
  assert.ok(bridge.status().outgoing.every((o) => o.to === '2'), JSON.stringify(bridge.status().outgoing))
})
