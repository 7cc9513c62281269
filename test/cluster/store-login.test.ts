/**
 * A cluster whose NATS servers ask every client to log in (issue #13): the
 * store's and the lease's connections log in with `store.username` /
 * `store.password`, the coordinator's MQTT with `broker.username` /
 * `broker.password`, a worker with its own. A task goes through; a hub with
 * the wrong store password stops at start, saying which setting NATS refused.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { connectAgent } from '../../src/agent/index.js'
import { natsClusterScope } from '../helpers/nats-cluster.js'
import { spawnHub, waitFor } from '../helpers/hub.js'
import { clusterHubConfig, hubHealth, submitUntilAccepted } from '../helpers/cluster-hubs.js'
import { runCli } from '../helpers/cli.js'

const HUB = { username: 'hub', password: 'hub-secret' }
const WORKER = { username: 'w1', password: 'w1-secret' }
const { dir, cleanups, started } = natsClusterScope(3, { users: [HUB, WORKER] })

const PREFIX = 'sl'

test('with NATS logins on, the hub leads on store.username/password and a task completes; a wrong store.password is named at start', async () => {
  const cluster = started()
  const hub = await spawnHub(await clusterHubConfig(cluster, dir.path, 'hub', PREFIX, { login: HUB }))
  cleanups.push(() => hub.kill())
  await waitFor(async () => (await hubHealth(hub.httpUrl))?.role === 'leader', 60_000, () => `the hub to lead:\n${hub.output()}`)
  const worker = await connectAgent({
    id: 'w1', url: cluster.nodes[1]!.mqttUrl, prefix: PREFIX, handleSignals: false, ...WORKER,
    handlers: { analyze: (content) => Promise.resolve({ done: content }) },
  })
  cleanups.push(() => Promise.race([worker.drain(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]))
  await submitUntilAccepted([hub.httpUrl], 'with-logins')
  await waitFor(async () => {
    const response = await fetch(`${hub.httpUrl}/tasks/with-logins`)
    return response.ok && ((await response.json()) as TaskRecord).state === 'completed'
  }, 60_000, () => `the task to complete:\n${hub.output().slice(-3000)}`)

  // The right broker login, the wrong store password (laid over the file, as a user keeps it out of one).
  const wrong = await clusterHubConfig(cluster, dir.path, 'wrong', PREFIX, { login: HUB })
  const result = await runCli(['hub', '--config', wrong], { cwd: dir.path, env: { TRINITY_SET: 'store.password=not-it' } })
  assert.notEqual(result.code, 0, result.stderr + result.stdout)
  assert.match(result.stdout + result.stderr, /refused store\.username \\?"hub\\?" and its store\.password/)
})
