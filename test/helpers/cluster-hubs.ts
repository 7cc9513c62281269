/**
 * `trinity hub` processes on `store.backend: nats-kv` over a test NATS
 * cluster (nats-cluster.ts), for the failover tests of issue #13: their
 * config, their /health, and a client that submits until some hub
 * acknowledges, as a client of a cluster does.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import type { HubHealth } from '../../src/contract/http.js'
import type { TaskEvent } from '../../src/contract/payloads/task.js'
import { topicsFor } from '../../src/contract/topics.js'
import type { NatsCluster } from './nats-cluster.js'
import { freePort, spawnHub, type HubProcess } from './hub.js'

/**
 * A hub's config file: its MQTT on node 1 then node 3, its store on all three (3 replicas), a 3 s
 * lease, one configured worker `w1` for the task type `analyze`.
 */
export async function clusterHubConfig(cluster: NatsCluster, dir: string, name: string, prefix: string, options: { taskLease?: string; login?: { username: string; password: string } } = {}): Promise<string> {
  const login = options.login
  const nodes = cluster.nodes
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, stringify({
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir, name), topicPrefix: prefix, statsInterval: '1s' },
    broker: { mode: 'external', url: `${nodes[0]?.mqttUrl},${nodes[2]?.mqttUrl}`, flavor: 'nats', ...login },
    store: { backend: 'nats-kv', url: nodes.map((n) => n.natsUrl).join(','), replicas: 3, lease: '3s', ...login },
    log: { level: 'info', pretty: false },
    health: { interval: '1s', timeout: '30s', missesBeforeOffline: 1000 },
    tasks: { lease: options.taskLease ?? '20s' },
    instances: [{ id: 'w1', role: 'worker', capabilities: ['analyze'] }],
    routes: { analyze: { targets: ['w1'] } },
  }))
  return file
}

/** GET /health, without following anything; undefined when the hub does not answer. */
export async function hubHealth(url: string): Promise<HubHealth | undefined> {
  try {
    const response = await fetch(`${url}/health`, { redirect: 'manual' })
    return (await response.json()) as HubHealth
  } catch {
    return undefined
  }
}

/** How long a submission is tried before the test fails saying no hub took it (a liveness bound). */
const SUBMIT_BOUND_MS = 180_000

/** POST /task until some hub acknowledges it: the next one when this one is gone, again while a takeover runs. */
export async function submitUntilAccepted(urls: readonly string[], id: string, content: unknown = { n: id }): Promise<void> {
  const body = JSON.stringify({ id, type: 'analyze', content })
  const deadline = Date.now() + SUBMIT_BOUND_MS
  let last = 'no answer'
  for (let attempt = 0; ; attempt++) {
    if (Date.now() > deadline) throw new Error(`no hub of ${urls.join(', ')} accepted task ${id} within ${SUBMIT_BOUND_MS} ms; the last answer: ${last}`)
    const url = urls[attempt % urls.length]!
    try {
      // fetch follows a standby's 307 to the leader, body and all.
      const response = await fetch(`${url}/task`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      if (response.status === 202 || response.status === 200) return
      last = `${url}: ${response.status} ${await response.text()}`
    } catch (err) {
      // The hub is gone: the next one.
      last = `${url}: ${(err as Error).message}`
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * Counts `completed` events per task on `{prefix}/task/+/event`, from whichever hub publishes them:
 * two for one task would be two applied completions. `close` ends the watcher.
 */
export async function watchCompletions(mqttUrl: string, prefix: string): Promise<{ completions: Map<string, number>; close: () => Promise<void> }> {
  const watcher = await mqtt.connectAsync(mqttUrl, { reconnectPeriod: 500 })
  const completions = new Map<string, number>()
  watcher.on('message', (_topic, payload) => {
    const event = JSON.parse(payload.toString()) as TaskEvent
    if (event.state === 'completed') completions.set(event.id, (completions.get(event.id) ?? 0) + 1)
  })
  await watcher.subscribeAsync(topicsFor(prefix).anyTaskEvent, { qos: 1 })
  return { completions, close: () => watcher.endAsync(true) }
}

/** A `trinity hub` kept running as a service manager would (`trinity start`'s supervisor, systemd's Restart=): started again whenever it exits. */
export interface KeptHub {
  readonly httpUrl: string
  /** The exit codes of the runs that ended, in order (3: deposed). */
  readonly exits: readonly (number | null)[]
  /** Every run's output, the current one's last. */
  output(): string
  stop(): Promise<void>
}

export async function keepHubRunning(configFile: string): Promise<KeptHub> {
  const exits: (number | null)[] = []
  let past = ''
  let current = await spawnHub(configFile)
  let stopped = false
  const watch = (run: HubProcess): void => {
    run.child.once('exit', (code) => {
      if (stopped) return
      exits.push(code)
      past += `${run.output()}\n[exited with ${code}: started again]\n`
      // A start that fails (the port not yet free, NATS unreachable) is tried again, as a supervisor does.
      const again = async (): Promise<void> => {
        while (!stopped) {
          try {
            const run = await spawnHub(configFile)
            if (stopped) return void (await run.kill())
            current = run
            return watch(run)
          } catch (err) {
            past += `[could not start again: ${(err as Error).message.split('\n')[0]}]\n`
            await new Promise((r) => setTimeout(r, 500))
          }
        }
      }
      void again()
    })
  }
  watch(current)
  return {
    httpUrl: current.httpUrl,
    exits,
    output: () => past + current.output(),
    async stop() {
      stopped = true
      await current.kill()
    },
  }
}
