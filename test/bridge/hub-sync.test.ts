/**
 * The hub's side of the bridge: POST /sync (409 when sync is disabled; 202
 * and a round when enabled), `trinity sync`, and POST /send to a remote
 * computer reaching the peer's bus through git.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import type { InboxFrame } from '../../src/contract/payloads/inbox.js'
import type { ComputerMessage, SyncRequest } from '../../src/contract/payloads/bridge.js'
import { HubError } from '../../src/contract/payloads/hub.js'
import { validate } from '../../src/contract/payloads/validate.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge, type Bridge } from '../../bridges/git/bridge.js'
import { CLI, http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, hubWithSync, Recorder, resolve } from './helpers.js'

const { dir, cleanups } = testScope()
const t = topicsFor()

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr }))
  })
}

test('POST /sync answers 409 with a clear error when sync is disabled', async () => {
  const hub = await startTestHub(await testConfig(join(dir.path, 'off')))
  cleanups.push(() => hub.stop())
  const answer = await http<{ error: { code: string; message: string } }>(hub.httpUrl, 'POST', '/sync')
  assert.equal(answer.status, 409)
  assert.equal(answer.body.error.code, 'TRINITY_ERR_SYNC_DISABLED')
  assert.match(answer.body.error.message, /sync\.enabled/)
  const run = await cli('--url', hub.httpUrl, 'sync')
  assert.notEqual(run.code, 0)
  assert.match(run.stderr, /409/)
})

test('POST /sync and `trinity sync` run a round; POST /send to a remote computer reaches its bus', async () => {
  const remote = bareRepo(dir.path)
  const hubs = []
  const bridges: Bridge[] = []
  for (const [n, peer] of [['1', '2'], ['2', '1']] as const) {
    const raw = await hubWithSync(join(dir.path, `hub-${n}`), { computer: n, peers: [peer], remote, workdir: join(dir.path, `sync-${n}`), interval: '1h' })
    const hub = await startTestHub(raw)
    cleanups.push(() => hub.stop())
    hubs.push(hub)
    const bridge = await startBridge(resolve(raw), { mqttUrl: hub.mqttUrl })
    cleanups.push(() => bridge.stop())
    bridges.push(bridge)
  }
  const [hub1, hub2] = hubs
  const [one, two] = bridges
  assert.ok(hub1 !== undefined && hub2 !== undefined && one !== undefined && two !== undefined)
  await waitFor(() => one.rounds.at(-1)?.ok === true && two.rounds.at(-1)?.ok === true, 20_000, 'start-up rounds')
  const requests = await Recorder.start(hub1.mqttUrl, [t.bridgeSync])
  cleanups.push(() => requests.stop())

  const before = one.rounds.length
  const accepted = await http<{ requested: boolean }>(hub1.httpUrl, 'POST', '/sync')
  assert.equal(accepted.status, 202)
  await waitFor(() => one.rounds.length > before, 10_000, 'a round after POST /sync')
  assert.equal(requests.json<SyncRequest>(t.bridgeSync)[0]?.reason, 'POST /sync')

  const afterHttp = one.rounds.length
  const run = await cli('--url', hub1.httpUrl, 'sync')
  assert.equal(run.code, 0, run.stderr)
  await waitFor(() => one.rounds.length > afterHttp, 10_000, 'a round after trinity sync')

  const peerBus = await Recorder.start(hub2.mqttUrl, [t.computerMessage('1'), t.instanceInbox('c1')])
  cleanups.push(() => peerBus.stop())
  const sent = await http<{ id: string; to: string }>(hub1.httpUrl, 'POST', '/send', { from: 'ops', to: '2', message: 'over git', instance: 'c1' })
  assert.equal(sent.status, 202)
  assert.equal(sent.body.to, '2')
  // Not a local message: the hub's own log does not have it.
  const local = await http<{ messages: unknown[] }>(hub1.httpUrl, 'GET', '/messages')
  assert.equal(local.body.messages.length, 0)
  await waitFor(() => one.status().queued === 1, 10_000, 'queued on computer 1')
  await http(hub1.httpUrl, 'POST', '/sync')
  await waitFor(() => one.status().queued === 0, 10_000, 'pushed')
  await http(hub2.httpUrl, 'POST', '/sync')
  await peerBus.waitFor(t.computerMessage('1'), 1)
  await peerBus.waitFor(t.instanceInbox('c1'), 1)
  const message = peerBus.json<ComputerMessage>(t.computerMessage('1'))[0]
  assert.deepEqual([message?.id, message?.from, message?.to, message?.fromInstance, message?.instance, message?.message], [sent.body.id, '1', '2', 'ops', 'c1', 'over git'])
  const frame = peerBus.json<InboxFrame>(t.instanceInbox('c1'))[0]
  assert.ok(frame?.kind === 'message' && frame.message.id === sent.body.id && frame.message.from === 'ops')
})

test('the bridge refuses a malformed computer send on hub/errors with the registry code beside its reason', async () => {
  const remote = bareRepo(dir.path)
  const raw = await hubWithSync(join(dir.path, 'refuse-1'), { computer: '1', peers: ['2'], remote, workdir: join(dir.path, 'refuse-sync-1'), interval: '1h' })
  const hub = await startTestHub(raw)
  cleanups.push(() => hub.stop())
  const bridge = await startBridge(resolve(raw), { mqttUrl: hub.mqttUrl })
  cleanups.push(() => bridge.stop())
  await waitFor(() => bridge.rounds.at(-1)?.ok === true, 20_000, 'the start-up round')
  const errors = await Recorder.start(hub.mqttUrl, [t.hubErrors])
  cleanups.push(() => errors.stop())
  const topic = t.computerSend('2')
  await errors.client.publishAsync(topic, JSON.stringify({ message: 42 }), { qos: 1 })
  await waitFor(() => errors.json<HubError>(t.hubErrors).some((e) => e.topic === topic), 30_000, 'the refusal on hub/errors')
  const refusal = errors.json<HubError>(t.hubErrors).find((e) => e.topic === topic)
  assert.ok(validate(HubError, refusal).ok, JSON.stringify(refusal))
  assert.equal(refusal?.code, 'TRINITY_ERR_BAD_PAYLOAD')
  assert.match(refusal?.reason ?? '', /^message: /)
})
