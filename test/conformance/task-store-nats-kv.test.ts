/**
 * The task store's conformance suite (task-store-suite.ts) on the JetStream KV
 * backend (src/coordinator/nats-kv-store.ts), on a 3-node nats-server cluster
 * started here (one for the file), buckets replicated on all three nodes.
 * Each place is a bucket prefix of its own, so the tests run side by side.
 */
import { before } from 'node:test'
import { NatsKvStore } from '../../src/coordinator/nats-kv-store.js'
import { bucketPrefixFor } from '../../src/coordinator/nats-kv.js'
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.js'
import { testScope } from '../helpers/hub.js'
import { taskStoreSuite } from './task-store-suite.js'

const { dir, cleanups } = testScope()
let cluster: NatsCluster | undefined

before(async () => {
  cluster = await startNatsCluster(dir.path)
  cleanups.push(() => cluster?.stop())
})

taskStoreSuite('nats-kv', {
  open: (place) => {
    if (cluster === undefined) throw new Error('the NATS cluster did not start')
    return NatsKvStore.open({ servers: cluster.nodes.map((n) => n.natsUrl), prefix: bucketPrefixFor(place), replicas: 3 })
  },
})
