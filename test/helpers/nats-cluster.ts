/**
 * A 3-node nats-server cluster with JetStream and an MQTT listener per node,
 * from Debian's /usr/sbin/nats-server (2.9.x), on free loopback ports: the
 * external broker of test/conformance/nats.test.ts, and of the store and
 * failover tests of issue #13. Each node keeps its JetStream store in its own
 * dir under the caller's temp dir; a restarted node keeps its ports and store,
 * so it rejoins as the same server.
 *
 * `start` resolves once the cluster has formed: every node has routes to the
 * other two and JetStream has a meta leader (nats-server's MQTT layer creates
 * its streams on the first MQTT connect, and before a meta leader exists that
 * connect fails). `stop` SIGKILLs what is left; call it from `after`, failure
 * or not. Should the test process die first (SIGKILL, a runner's timeout, a
 * cleanup before `stop` that hangs until the process is ended), the nodes are
 * reaped anyway (test/helpers/reaped-spawn.ts: each in its own process
 * group, watched by the supervisor's lifeline).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before } from 'node:test'
import mqtt from 'mqtt'
import { spawnReaped } from './reaped-spawn.js'
import { freePort, testScope, waitFor } from './hub.js'

const NATS_SERVER = '/usr/sbin/nats-server'

export interface NatsNode {
  readonly name: string
  readonly clientPort: number
  readonly routePort: number
  readonly mqttPort: number
  readonly monitorPort: number
  readonly mqttUrl: string
  /** The NATS client URL (nats://127.0.0.1:port): the JetStream KV store's and the leader lease's. */
  readonly natsUrl: string
  readonly monitorUrl: string
  readonly storeDir: string
  readonly configFile: string
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[]
  /** Everything node `index` wrote to stdout and stderr, for a failure message. */
  output(index: number): string
  running(index: number): boolean
  /** Node `index`'s process id while it runs (the bench reads its CPU off /proc). */
  pid(index: number): number | undefined
  /** SIGKILL one node: no goodbye to its routes or its MQTT clients (their Wills are lost with it). */
  kill(index: number): Promise<void>
  /** Starts a killed node again on its ports and store dir, and waits until it has routes to both others. */
  restart(index: number): Promise<void>
  /** SIGKILL every node still running. */
  stop(): Promise<void>
}

interface Running {
  child: ChildProcess
  exited: Promise<void>
  output: string
}

const CLUSTER_NAME = 'trinity-test'

/**
 * A free port may be taken by someone else (another test's server, or a client's ephemeral port)
 * between freePort() and the node's bind: then the cluster is started again on fresh ports, as
 * startMosquitto does.
 */
export interface NatsClusterOptions {
  /** With users, every client (NATS and MQTT) must log in as one of them (`authorization` in each node's config). */
  users?: readonly { username: string; password: string }[]
}

export async function startNatsCluster(dir: string, size = 3, options: NatsClusterOptions = {}): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(join(dir, `try-${attempt}`), size, options)
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err
    }
  }
}

async function startNatsClusterOnce(dir: string, size: number, options: NatsClusterOptions): Promise<NatsCluster> {
  const nodes: NatsNode[] = []
  for (let i = 1; i <= size; i++) {
    const [clientPort, routePort, mqttPort, monitorPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
    const name = `n${i}`
    const storeDir = join(dir, `nats-${name}`)
    mkdirSync(storeDir, { recursive: true })
    nodes.push({
      name, clientPort, routePort, mqttPort, monitorPort, storeDir,
      mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
      natsUrl: `nats://127.0.0.1:${clientPort}`,
      monitorUrl: `http://127.0.0.1:${monitorPort}`,
      configFile: join(dir, `nats-${name}.conf`),
    })
  }
  for (const node of nodes) writeFileSync(node.configFile, nodeConfig(node, nodes, options))

  const running: (Running | undefined)[] = nodes.map(() => undefined)
  const launch = (index: number): void => {
    const node = nodes[index]!
    // Reaped with this process, however it ends (reaped-spawn.ts).
    const child = spawnReaped(`nats-${index + 1}`, NATS_SERVER, ['-c', node.configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
    const entry: Running = { child, output: '', exited: new Promise((resolve) => child.once('exit', () => resolve())) }
    const append = (d: Buffer): void => { entry.output += d.toString() }
    child.stdout?.on('data', append)
    child.stderr?.on('data', append)
    running[index] = entry
  }
  const alive = (index: number): boolean => {
    const child = running[index]?.child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }
  const kill = async (index: number): Promise<void> => {
    const entry = running[index]
    if (entry === undefined) return
    if (alive(index)) entry.child.kill('SIGKILL')
    await entry.exited
  }
  const cluster: NatsCluster = {
    nodes,
    output: (index) => running[index]?.output ?? '',
    running: alive,
    pid: (index) => (alive(index) ? running[index]?.child.pid : undefined),
    kill,
    async restart(index) {
      await kill(index)
      launch(index)
      await waitFor(async () => {
        if (!alive(index)) throw new Error(`${nodes[index]!.name} exited:\n${cluster.output(index)}`)
        return (await routeCount(nodes[index]!)) === nodes.length - 1
      }, 30_000, `${nodes[index]!.name} to rejoin the cluster`)
    },
    async stop() {
      for (let i = 0; i < nodes.length; i++) await kill(i)
    },
  }
  try {
    for (let i = 0; i < nodes.length; i++) launch(i)
    await waitFor(async () => {
      for (let i = 0; i < nodes.length; i++) if (!alive(i)) throw new Error(`${nodes[i]!.name} exited:\n${cluster.output(i)}`)
      const routes = await Promise.all(nodes.map(routeCount))
      if (!routes.every((n) => n === nodes.length - 1)) return false
      const leaders = await Promise.all(nodes.map(metaLeader))
      return leaders.every((l) => l !== undefined && l === leaders[0])
    }, 60_000, () => `the NATS cluster to form:\n${nodes.map((_, i) => cluster.output(i)).join('\n')}`)
    // The first MQTT connect to a node creates the MQTT streams (seconds on a cluster); a suite's
    // first test should not pay for it under its own bounds.
    for (const node of nodes) await mqttReady(node, options.users?.[0])
  } catch (err) {
    await cluster.stop()
    throw err
  }
  return cluster
}

/** One node's config file: client port, routes to every node (its own is ignored), JetStream, MQTT. */
function nodeConfig(node: NatsNode, all: readonly NatsNode[], options: NatsClusterOptions): string {
  const users = options.users === undefined ? '' : `authorization {
  users: [
${options.users.map((u) => `    { user: ${JSON.stringify(u.username)}, password: ${JSON.stringify(u.password)} }`).join('\n')}
  ]
}
`
  return `${users}server_name: ${node.name}
listen: 127.0.0.1:${node.clientPort}
http: 127.0.0.1:${node.monitorPort}
jetstream {
  store_dir: ${JSON.stringify(node.storeDir)}
}
cluster {
  name: ${CLUSTER_NAME}
  listen: 127.0.0.1:${node.routePort}
  routes: [
${all.filter((n) => n !== node).map((n) => `    nats-route://127.0.0.1:${n.routePort}`).join('\n')}
  ]
}
mqtt {
  listen: 127.0.0.1:${node.mqttPort}
  # Left to itself nats-server sizes the MQTT streams by the peers it knows at the first
  # MQTT connect (2 was seen here): one node lost would then leave a stream without quorum.
  stream_replicas: ${all.length}
}
`
}

async function mqttReady(node: NatsNode, login: { username: string; password: string } | undefined): Promise<void> {
  await waitFor(async () => {
    const client = await mqtt.connectAsync(node.mqttUrl, { reconnectPeriod: 0, connectTimeout: 10_000, ...login }).catch(() => undefined)
    await client?.endAsync()
    return client !== undefined
  }, 60_000, `${node.name}'s MQTT listener`)
}

async function monitor<T>(node: NatsNode, path: string): Promise<T | undefined> {
  try {
    const response = await fetch(`${node.monitorUrl}${path}`)
    return response.ok ? (await response.json()) as T : undefined
  } catch {
    return undefined
  }
}

async function routeCount(node: NatsNode): Promise<number> {
  return (await monitor<{ num_routes?: number }>(node, '/routez'))?.num_routes ?? 0
}

/** The JetStream meta leader as this node sees it; undefined before an election. */
async function metaLeader(node: NatsNode): Promise<string | undefined> {
  const jsz = await monitor<{ meta_cluster?: { leader?: string } }>(node, '/jsz')
  const leader = jsz?.meta_cluster?.leader
  return leader === undefined || leader === '' ? undefined : leader
}

/**
 * The index of the node leading a JetStream stream (a KV bucket's is
 * `KV_{bucket}`), as a running node's /jsz says; undefined while it has none.
 */
export async function streamLeader(cluster: NatsCluster, stream: string): Promise<number | undefined> {
  for (let i = 0; i < cluster.nodes.length; i++) {
    if (!cluster.running(i)) continue
    const jsz = await monitor<{ account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[] }>(cluster.nodes[i]!, '/jsz?streams=true')
    for (const account of jsz?.account_details ?? []) {
      const leader = account.stream_detail?.find((s) => s.name === stream)?.cluster?.leader
      const index = cluster.nodes.findIndex((n) => n.name === leader)
      if (index >= 0) return index
    }
  }
  return undefined
}

/**
 * A test file's scope (hub.ts `testScope`) with a NATS cluster started before
 * its tests and stopped with its cleanups. `started()` is that cluster, or
 * throws saying it did not start.
 */
export function natsClusterScope(size = 3, options: NatsClusterOptions = {}): ReturnType<typeof testScope> & { started: () => NatsCluster } {
  const scope = testScope()
  let cluster: NatsCluster | undefined
  before(async () => {
    cluster = await startNatsCluster(scope.dir.path, size, options)
    scope.cleanups.push(() => cluster?.stop())
  })
  return {
    ...scope,
    started: () => {
      if (cluster === undefined) throw new Error('the NATS cluster did not start')
      return cluster
    },
  }
}
