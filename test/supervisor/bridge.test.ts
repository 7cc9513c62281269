/**
 * `trinity start` with sync enabled: the supervisor runs the git bridge
 * between the hub and the instances, restarts it after a SIGKILL, and stops
 * it before the hub. The bridge does rounds against a real bare repository.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { BridgeStatus } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { ROOT, freePort, http, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { bareRepo, syncSection } from '../bridge/helpers.js'
import { spawnSupervisor, waitGone } from '../helpers/supervisor.js'

const { dir, cleanups } = testScope()

test('the supervisor runs the git bridge, restarts it after SIGKILL, and stops it before the hub', async () => {
  const file = writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir.path, 'data') },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    supervisor: { restart: { base: '200ms', jitter: 0 } },
    sync: syncSection({ computer: '1', peers: ['2'], remote: bareRepo(dir.path), workdir: join(dir.path, 'sync'), interval: '1h' }),
    instances: [{ id: 'c1', capabilities: ['general'], command: `node ${join(ROOT, 'dist/src/fleet/instance.js')} c1` }],
  })
  const sup = await spawnSupervisor(file, { cwd: ROOT })
  cleanups.push(() => sup.stop('SIGKILL'))
  const hub = sup.ready.children.find((c) => c.kind === 'hub')
  const bridge = sup.ready.children.find((c) => c.kind === 'bridge')
  assert.deepEqual([hub?.state, bridge?.state], ['running', 'running'], JSON.stringify(sup.ready.children))
  assert.ok((bridge?.startedAt ?? 0) >= (hub?.readyAt ?? Infinity), 'the bridge starts after the hub is ready')

  const client = await mqtt.connectAsync(sup.mqttUrl)
  cleanups.push(() => client.endAsync())
  const statuses: BridgeStatus[] = []
  client.on('message', (_t, payload) => { if (payload.length > 0) statuses.push(JSON.parse(payload.toString()) as BridgeStatus) })
  await client.subscribeAsync(topicsFor().bridgeStatus, { qos: 1 })
  await waitFor(() => statuses.some((s) => s.lastSuccessAt !== null), 20_000, 'a successful round')

  const synced = statuses.filter((s) => s.lastSuccessAt !== null).at(-1)?.lastSuccessAt ?? 0
  assert.equal((await http(sup.httpUrl, 'POST', '/sync')).status, 202)
  await waitFor(() => statuses.some((s) => (s.lastSuccessAt ?? 0) > synced), 20_000, 'a round on request')

  const pid = sup.records.find((r) => r.service === 'bridge' && r.msg === 'child starting')?.childPid
  assert.ok(typeof pid === 'number')
  process.kill(pid, 'SIGKILL')
  await waitFor(() => sup.records.some((r) => r.service === 'bridge' && r.msg === 'child running' && r.childPid !== pid), 20_000, 'bridge restarted')
  const afterKill = Math.max(...statuses.map((s) => s.lastSuccessAt ?? 0))
  assert.equal((await http(sup.httpUrl, 'POST', '/sync')).status, 202)
  await waitFor(() => statuses.some((s) => (s.lastSuccessAt ?? 0) > afterKill), 20_000, 'the restarted bridge syncs')

  const pids = sup.childPids()
  assert.deepEqual(await sup.stop('SIGTERM'), { code: 0, signal: null })
  const order = sup.records.filter((r) => r.msg === 'child stopped').map((r) => r.service)
  assert.deepEqual(order.slice(-2), ['bridge', 'hub'])
  assert.equal(order[0], 'c1')
  await waitGone(pids, 3000)
})
