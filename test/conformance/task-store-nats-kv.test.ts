/**
 * The task store's conformance suite (task-store-suite.ts) on the JetStream KV
 * backend (src/coordinator/nats-kv-store.ts), on a 3-node nats-server cluster
 * started here (one for the file), buckets replicated on all three nodes.
 * Each place is a bucket prefix of its own, so the tests run side by side.
 */
import { NatsKvStore } from '../../src/coordinator/nats-kv-store.js'
import { bucketPrefixFor } from '../../src/coordinator/nats-kv.js'
import { natsClusterScope } from '../helpers/nats-cluster.js'
import { taskStoreSuite } from './task-store-suite.js'

const { started } = natsClusterScope()

taskStoreSuite('nats-kv', {
  open: (place) => NatsKvStore.open({ servers: started().nodes.map((n) => n.natsUrl), prefix: bucketPrefixFor(place), replicas: 3 }),
})
