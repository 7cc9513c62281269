/**
 * The upgrade path from a single SQLite hub to a cluster (issue #13):
 * `trinity store export` of a hub's trinity.db, `trinity store import` into
 * the JetStream KV store on a NATS server, and a hub on `store.backend:
 * nats-kv` that then leads with the same tasks, messages and births. An
 * import goes into an empty store only, and never while a hub leads.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { STORE_FILE, SqliteStore } from '../../src/coordinator/sqlite-store.js'
import { NatsKvStore } from '../../src/coordinator/nats-kv-store.js'
import { bucketPrefixFor } from '../../src/coordinator/nats-kv.js'
import type { TaskList } from '../../src/contract/http.js'
import { natsClusterScope } from '../helpers/nats-cluster.js'
import { http, spawnHub, startTestHub, testConfig, waitFor, writeConfig } from '../helpers/hub.js'
import { hubHealth } from '../helpers/cluster-hubs.js'
import { runCli } from '../helpers/cli.js'
import { TestInstance } from '../helpers/instance.js'

const { dir, cleanups, started } = natsClusterScope()

const PREFIX = 'up'

test('a SQLite hub\'s store, exported and imported into nats-kv, is what the cluster\'s first leader starts with; a second import is refused', async () => {
  const node = started().nodes[0]
  if (node === undefined) throw new Error('the NATS server did not start')
  const single = join(dir.path, 'single')
  const sqliteConfig = await testConfig(single, {
    hub: { topicPrefix: PREFIX },
    instances: [{ id: 'w1', role: 'worker', capabilities: ['analyze'] }, { id: 'away', role: 'away' }],
    routes: { analyze: { targets: ['w1'] }, later: { targets: ['away'] } },
  })
  const hub = await startTestHub(sqliteConfig)
  const worker = await TestInstance.start({ url: hub.mqttUrl, id: 'w1', prefix: PREFIX, capabilities: ['analyze'] })
  for (let i = 0; i < 3; i++) assert.equal((await http(hub.httpUrl, 'POST', '/task', { id: `done-${i}`, type: 'analyze', content: { i } })).status, 202)
  assert.equal((await http(hub.httpUrl, 'POST', '/task', { id: 'waiting', type: 'later', content: { big: 'x'.repeat(2000) } })).status, 202)
  assert.equal((await http(hub.httpUrl, 'POST', '/send', { from: 'w1', to: 'away', message: 'hello' })).status, 202)
  await waitFor(() => [0, 1, 2].every((i) => hub.coordinator.scheduler.get(`done-${i}`)?.state === 'completed'), 30_000, 'three tasks completed')
  await worker.close()
  await hub.stop()

  const sqlite = new SqliteStore({ file: join(single, STORE_FILE), sync: 'normal' })
  const expected = { tasks: sqlite.listTasks({ limit: 100 }), messages: sqlite.recentMessages(100), births: sqlite.births() }
  sqlite.close()
  assert.equal(expected.tasks.length, 4)
  assert.equal(expected.messages.length, 1)
  assert.ok(expected.births.some((b) => b.id === 'w1'), 'the worker\'s birth is in the store')

  const sqliteFile = writeConfig(single, sqliteConfig, 'single.yaml')
  const exportFile = join(dir.path, 'store.jsonl')
  const exported = await runCli(['--config', sqliteFile, 'store', 'export', exportFile], { cwd: dir.path })
  assert.equal(exported.code, 0, exported.stderr)
  assert.match(exported.stderr, /exported 4 tasks, 1 messages, 1 births/)

  const clusterConfig = writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: 0, dataDir: join(dir.path, 'leader'), topicPrefix: PREFIX },
    broker: { mode: 'external', url: node.mqttUrl, flavor: 'nats' },
    store: { backend: 'nats-kv', url: node.natsUrl, replicas: 1, lease: '3s' },
    log: { level: 'info', pretty: false },
    instances: [{ id: 'w1', role: 'worker', capabilities: ['analyze'] }, { id: 'away', role: 'away' }],
    routes: { analyze: { targets: ['w1'] }, later: { targets: ['away'] } },
  }, 'cluster.yaml')
  const imported = await runCli(['--config', clusterConfig, 'store', 'import', exportFile], { cwd: dir.path })
  assert.equal(imported.code, 0, imported.stderr)
  assert.match(imported.stderr, /imported 4 tasks, 1 messages, 1 births \(store.backend nats-kv\)/)

  const kv = await NatsKvStore.open({ servers: [node.natsUrl], prefix: bucketPrefixFor(PREFIX), replicas: 1 })
  try {
    assert.deepEqual({ tasks: kv.listTasks({ limit: 100 }), messages: kv.recentMessages(100), births: kv.births() }, expected, 'the same records, in the same order')
  } finally {
    await kv.close()
  }
  const again = await runCli(['--config', clusterConfig, 'store', 'import', exportFile], { cwd: dir.path })
  assert.equal(again.code, 1)
  assert.match(again.stderr, /not empty \(4 tasks, 1 messages, 1 births\)/)

  // The cluster's first hub leads with what the single hub had: the waiting task still waits.
  const leader = await spawnHub(clusterConfig)
  cleanups.push(() => leader.kill())
  await waitFor(async () => (await hubHealth(leader.httpUrl))?.role === 'leader', 60_000, () => `the hub to lead:\n${leader.output()}`)
  const list = await http<TaskList>(leader.httpUrl, 'GET', '/tasks?limit=10')
  assert.equal(list.body.counts.completed, 3)
  assert.equal(list.body.counts.queued, 1)
  assert.equal((await http<{ state: string }>(leader.httpUrl, 'GET', '/tasks/waiting')).body.state, 'queued')
  const busy = await runCli(['--config', clusterConfig, 'store', 'import', exportFile], { cwd: dir.path })
  assert.equal(busy.code, 1)
  assert.match(busy.stderr, /a hub leads this store/)
})
