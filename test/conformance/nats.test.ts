/**
 * The same suite with `broker.mode: external` and `broker.flavor: nats` against
 * a 3-node nats-server cluster with JetStream started here (test/helpers/nats-cluster.ts):
 * the hub on node 1, the instances on node 2.
 */
import { conformance } from './suite.js'

conformance('nats')
