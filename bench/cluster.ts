/**
 * `trinity-cluster` in the peers bench (issue #13): Trinity as a cluster runs
 * it. A 3-node NATS JetStream cluster (Debian's nats-server, loopback ports,
 * test/helpers/nats-cluster.ts), two `trinity hub` processes on
 * `store.backend: nats-kv` with 3 replicas and `broker.flavor: nats` (the
 * leader, then a standby that waits for its lease), and the same no-op worker
 * and QoS 1 producer as the embedded hub's (trinity-clients.ts), both on
 * node 2 while the hubs' MQTT is on node 1: every task crosses the cluster.
 *
 * The server is the leader hub (its pid for CPU and RSS); the three
 * nats-servers' CPU is reported beside it, since they do the replication.
 */
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { stringify } from 'yaml'
import type { HubHealth, InstanceList } from '../src/contract/http.js'
import { freePort, spawnHub, tempDir, waitFor, type HubProcess } from '../test/helpers/hub.js'
import { startNatsCluster, type NatsCluster } from '../test/helpers/nats-cluster.js'
import type { TaskSystem } from './peers.js'
import { trinityClients } from './trinity-clients.js'

async function hubConfig(cluster: NatsCluster, dir: string, name: string): Promise<string> {
  const nodes = cluster.nodes
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, stringify({
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir, name) },
    // Node 1, then node 3 on a reconnect: never the worker's and producer's node.
    broker: { mode: 'external', url: `${nodes[0]?.mqttUrl},${nodes[2]?.mqttUrl}`, flavor: 'nats' },
    store: { backend: 'nats-kv', url: nodes.map((n) => n.natsUrl).join(','), replicas: 3 },
    log: { level: 'info', pretty: false },
    // As the embedded system's: pings rare enough not to weigh on the figures.
    health: { interval: '30s', timeout: '5s' },
    tasks: { lease: '60s', keepFinished: 1_000_000 },
    instances: [{ id: 'noop', concurrency: 1000 }],
    routes: { general: { targets: ['noop'] } },
  }))
  return file
}

async function role(hub: HubProcess): Promise<string | undefined> {
  try {
    return ((await fetch(`${hub.httpUrl}/health`, { redirect: 'manual' }).then((r) => r.json())) as HubHealth).role
  } catch {
    return undefined
  }
}

/** SIGTERM, and SIGKILL should the hub not be gone in 30 s: a bench must not hang on a close. */
async function stopHub(hub: HubProcess): Promise<void> {
  const timer = setTimeout(() => void hub.kill('SIGKILL'), 30_000)
  await hub.kill('SIGTERM')
  clearTimeout(timer)
}

export async function trinityCluster(): Promise<TaskSystem> {
  const dir = tempDir('trinity-bench-cluster-')
  const cluster = await startNatsCluster(dir.path)
  const hubs: HubProcess[] = []
  const teardown = async (): Promise<void> => {
    for (const hub of hubs.reverse()) await stopHub(hub)
    await cluster.stop()
    dir.remove()
  }
  try {
    const leader = await spawnHub(await hubConfig(cluster, dir.path, 'hub-a'))
    hubs.push(leader)
    await waitFor(async () => (await role(leader)) === 'leader', 60_000, () => `hub a to lead:\n${leader.output()}`)
    const standby = await spawnHub(await hubConfig(cluster, dir.path, 'hub-b'))
    hubs.push(standby)
    await waitFor(async () => (await role(standby)) === 'standby', 60_000, () => `hub b to stand by:\n${standby.output()}`)
    const node2 = cluster.nodes[1]?.mqttUrl ?? ''
    const clients = await trinityClients({ worker: node2, producer: node2 }, (id) => system.onCompleted(id))
    const system: TaskSystem = {
      name: 'Trinity cluster: 3 NATS nodes, leader + standby',
      // Each task is several writes replicated three ways: tens of tasks per second here, not thousands.
      smallBurst: true,
      // nats-server PUBACKs once the submission is in the coordinator's MQTT session stream (R3);
      // the leader then writes the task to the KV bucket (R3) before it acknowledges the message.
      durability: 'JetStream R3 before PUBACK, then KV R3',
      serverPid: leader.child.pid ?? 0,
      supportPids: { label: 'NATS', pids: cluster.nodes.map((_, i) => cluster.pid(i) ?? 0) },
      onCompleted: () => undefined,
      submit: (id) => clients.submit(id),
      async close() {
        await clients.close()
        await teardown()
      },
    }
    await waitFor(async () => (await fetch(`${leader.httpUrl}/instances`).then((r) => r.json() as Promise<InstanceList>))
      .instances.some((i) => i.id === 'noop' && i.state === 'online'), 30_000, 'the no-op instance online')
    return system
  } catch (err) {
    await teardown()
    throw err
  }
}
