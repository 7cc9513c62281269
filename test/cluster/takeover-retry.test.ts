/**
 * A takeover that fails leaves the hub a standby, not gone (issue #13). A
 * task written under an epoch newer than any lease this hub can get makes
 * every takeover fail (nats-kv-store.ts refuses to lead over a newer leader's
 * writes: FENCED). The hub, holding the lease each time, must hand it back,
 * wait as a standby on its port, and try again; once the poisoned key is
 * gone, its next try leads. Before, the first failure exited the process
 * (code 1), which left a cluster hit by a transient failure (a request
 * unanswered while a NATS node was lost) with no candidate.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bucketPrefixFor, connectNats, openBucket } from '../../src/coordinator/nats-kv.js'
import { natsClusterScope } from '../helpers/nats-cluster.js'
import { spawnHub, waitFor } from '../helpers/hub.js'
import { clusterHubConfig, hubHealth } from '../helpers/cluster-hubs.js'

const { dir, cleanups, started } = natsClusterScope()

const PREFIX = 'tr'

test('a takeover that fails hands the lease back and the hub waits as a standby, then leads once it can', async () => {
  const cluster = started()
  const handle = await connectNats({ servers: cluster.nodes.map((n) => n.natsUrl), name: 'takeover-retry-test', timeoutMs: 10_000 })
  cleanups.push(() => handle.nc.close())
  const tasks = await openBucket(handle, `${bucketPrefixFor(PREFIX)}_tasks`, { replicas: 3 })
  const now = Date.now()
  const key = { id: 'from-the-future', state: 'queued', type: 'analyze', createdAt: now, updatedAt: now }
  await tasks.put('from-the-future', JSON.stringify({ e: 1_000_000_000, s: 1, k: key, m: key, r: key }))

  const hub = await spawnHub(await clusterHubConfig(cluster, dir.path, 'hub', PREFIX))
  cleanups.push(() => hub.kill())
  const refusals = (): number => hub.output().split('\n').filter((line) => line.includes('could not take over as the leader: back to standby')).length
  await waitFor(() => refusals() >= 2, 60_000, () => `two failed takeovers:\n${hub.output()}`)
  assert.equal(hub.child.exitCode, null, `the hub is still running:\n${hub.output()}`)
  assert.match(hub.output(), /newer than this hub's/)
  const health = await hubHealth(hub.httpUrl)
  assert.equal(health?.role, 'standby', `it answers as a standby between tries: ${JSON.stringify(health)}`)

  await tasks.delete('from-the-future')
  await waitFor(async () => (await hubHealth(hub.httpUrl))?.role === 'leader', 60_000, () => `the hub to lead:\n${hub.output().slice(-3000)}`)
  assert.equal(hub.child.exitCode, null)
})
