/**
 * Three computers, each with its own hub and bridge, one shared bare repo:
 * messages in every direction arrive exactly once on `computer/{from}/message`
 * and in the named instance's inbox; peers' statuses are retained on every
 * bus; delivery receipts come back; POST /send to a peer crosses too.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { InboxFrame } from '../../src/contract/payloads/inbox.js'
import type { BridgeStatus, ComputerMessage, ComputerStatus } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import type { Hub } from '../../src/hub.js'
import { startBridge, type Bridge } from '../../bridges/git/bridge.js'
import { http, startTestHub, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, hubWithSync, Recorder, resolve } from './helpers.js'

const { dir, cleanups } = testScope()
const t = topicsFor()
const COMPUTERS = ['1', '2', '3']
const PER_PAIR = 3

test('three computers: every direction, exactly once, right topics and inboxes, statuses retained, receipts', async () => {
  const remote = bareRepo(dir.path)
  const hubs = new Map<string, Hub>()
  const bridges = new Map<string, Bridge>()
  const recorders = new Map<string, Recorder>()
  for (const n of COMPUTERS) {
    const o = { computer: n, peers: COMPUTERS.filter((p) => p !== n), remote, workdir: join(dir.path, `sync-${n}`), interval: '2s' }
    const raw = await hubWithSync(join(dir.path, `hub-${n}`), o)
    const hub = await startTestHub(raw)
    cleanups.push(() => hub.stop())
    hubs.set(n, hub)
    const recorder = await Recorder.start(hub.mqttUrl, [t.anyComputerMessage, t.instanceInbox('c1'), t.anyComputerStatus])
    cleanups.push(() => recorder.stop())
    recorders.set(n, recorder)
    const bridge = await startBridge(resolve(raw), { mqttUrl: hub.mqttUrl })
    cleanups.push(() => bridge.stop())
    bridges.set(n, bridge)
  }

  // Every computer sends PER_PAIR messages to each other one, on the bus; the last one also by POST /send.
  for (const from of COMPUTERS) {
    const recorder = recorders.get(from)
    for (const to of COMPUTERS.filter((p) => p !== from)) {
      for (let k = 1; k < PER_PAIR; k++) {
        await recorder?.client.publishAsync(t.computerSend(to), JSON.stringify({ message: `${from}→${to} #${k}\n# not a heading`, from: `agent-${from}`, instance: 'c1' }), { qos: 1 })
      }
      const sent = await http<{ id: string }>(hubs.get(from)?.httpUrl ?? '', 'POST', '/send', { from: `agent-${from}`, to, message: `${from}→${to} #${PER_PAIR}`, instance: 'c1' })
      assert.equal(sent.status, 202)
    }
  }

  for (const to of COMPUTERS) {
    const recorder = recorders.get(to)
    for (const from of COMPUTERS.filter((p) => p !== to)) await recorder?.waitFor(t.computerMessage(from), PER_PAIR)
    await recorder?.waitFor(t.instanceInbox('c1'), PER_PAIR * 2)
  }
  // A few more rounds everywhere: nothing may arrive twice.
  for (const bridge of bridges.values()) await bridge.syncNow()
  for (const bridge of bridges.values()) await bridge.syncNow()

  for (const to of COMPUTERS) {
    const recorder = recorders.get(to)
    assert.ok(recorder !== undefined)
    for (const from of COMPUTERS.filter((p) => p !== to)) {
      const got: ComputerMessage[] = recorder.json<ComputerMessage>(t.computerMessage(from))
      assert.deepEqual(got.map((m) => m.message).sort(), Array.from({ length: PER_PAIR }, (_, i) => `${from}→${to} #${i + 1}${i + 1 < PER_PAIR ? '\n# not a heading' : ''}`).sort(), `${from} → ${to}`)
      assert.equal(new Set(got.map((m) => m.id)).size, PER_PAIR)
      for (const m of got) assert.deepEqual([m.from, m.to, m.instance, m.fromInstance], [from, to, 'c1', `agent-${from}`])
    }
    const inbox = recorder.json<InboxFrame>(t.instanceInbox('c1'))
    assert.equal(inbox.length, PER_PAIR * 2, `inbox of c1 on ${to}`)
    for (const frame of inbox) {
      assert.equal(frame.kind, 'message')
      if (frame.kind === 'message') assert.equal(frame.message.to, 'c1')
    }
  }

  // Peers' statuses are retained: a client arriving now gets them at once. (2 s intervals: a loaded
  // machine's slow rounds must not leave a live peer's file 3 intervals old, which is OFFLINE by rule.)
  const late = await Recorder.start(hubs.get('1')?.mqttUrl ?? '', [t.anyComputerStatus])
  cleanups.push(() => late.stop())
  await waitFor(() => late.on(t.computerStatus('2')).length > 0 && late.on(t.computerStatus('3')).length > 0, 10_000, 'retained peer statuses')
  assert.ok(late.on(t.computerStatus('2')).every((r) => r.retain))
  const two = late.json<ComputerStatus>(t.computerStatus('2')).at(-1)
  assert.ok(two !== undefined && ['IDLE', 'ACTIVE', 'WORKING', 'EMERGENCY', 'SYNCING'].includes(two.state), JSON.stringify(two))

  // Receipts: once each recipient's status file names the messages read, the senders see them delivered.
  await waitFor(async () => {
    for (const bridge of bridges.values()) await bridge.syncNow()
    return [...bridges.values()].every((b) => b.status().awaitingReceipt === 0 && b.status().queued === 0)
  }, 20_000, 'receipts')
  const status: BridgeStatus = bridges.get('1')?.status() ?? assert.fail('no bridge')
  assert.equal(status.outgoing.filter((o) => o.state === 'delivered').length, PER_PAIR * 2)
  assert.equal(status.lastError, null)
})
