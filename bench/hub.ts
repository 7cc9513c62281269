/**
 * Hub benchmarks, each beside a baseline measured in the same run:
 * - submit → assigned latency (p50/p99), beside a raw QoS 1 publish → receive
 *   hop through the same broker;
 * - tasks per second end to end (submit, route, durable write, assign,
 *   no-op instance, report, durable completion), beside raw QoS 1 messages
 *   per second through the same broker;
 * - idle RSS of the hub process, beside an idle `node -e` process.
 * The hub runs as its own process, as in production, with durability on.
 */
import type { MqttClient } from 'mqtt'
import { topicsFor } from '../src/contract/topics.js'
import { connectBus } from '../src/net/bus-client.js'
import type { InboxFrame } from '../src/contract/payloads/inbox.js'
import { spawnHub, tempDir, testConfig, waitFor, writeConfig } from '../test/helpers/hub.js'
import { cpuSeconds, idleNodeRss, percentile, rssMb, type Row } from './proc.js'
import type { TaskList } from '../src/contract/http.js'

export type { Row } from './proc.js'

const topics = topicsFor()

function connect(url: string, clientId?: string): Promise<MqttClient> {
  return connectBus({ url, ...(clientId === undefined ? {} : { clientId }), clean: true }, 'first-error')
}

/** A no-op instance: completes every task at once. */
async function noOpInstance(url: string, onTask: (taskId: string) => void): Promise<MqttClient> {
  const client = await connect(url, 'bench-noop')
  client.on('message', (_t, payload) => {
    const frame = JSON.parse(payload.toString()) as InboxFrame
    if (frame.kind === 'ping') { client.publish(topics.instanceHeartbeat('noop'), JSON.stringify({ ts: Date.now(), nonce: frame.nonce })); return }
    if (frame.kind !== 'task') return
    onTask(frame.task.id)
    client.publish(topics.instanceReport('noop'), JSON.stringify({ taskId: frame.task.id, state: 'completed', leaseToken: frame.leaseToken, output: null }), { qos: 1 })
  })
  await client.subscribeAsync(topics.instanceInbox('noop'), { qos: 1 })
  await client.publishAsync(topics.instanceStatus('noop'), JSON.stringify({ state: 'online', session: Date.now(), concurrency: 1000, capabilities: ['general'] }), { qos: 1, retain: true })
  return client
}

/** Publisher → subscriber through the broker at `url`, QoS 1, one at a time: the floor under any hop that goes through it. */
export async function rawHop(url: string, n: number): Promise<{ p50: number; p99: number }> {
  const pub = await connect(url)
  const sub = await connect(url)
  await sub.subscribeAsync('bench/raw', { qos: 1 })
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    const got = new Promise((r) => sub.once('message', r))
    const t0 = performance.now()
    pub.publish('bench/raw', `{"n":${i},"type":"general","content":"x"}`, { qos: 1 })
    await got
    samples.push(performance.now() - t0)
  }
  await pub.endAsync(); await sub.endAsync()
  samples.sort((a, b) => a - b)
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) }
}

async function rawThroughput(url: string, n: number): Promise<number> {
  const pub = await connect(url)
  const sub = await connect(url)
  await sub.subscribeAsync('bench/flood', { qos: 1 })
  let got = 0
  const done = new Promise<void>((r) => sub.on('message', () => { if (++got === n) r() }))
  const t0 = performance.now()
  for (let i = 0; i < n; i++) pub.publish('bench/flood', `{"n":${i},"type":"general","content":"x"}`, { qos: 1 })
  await done
  const rate = n / ((performance.now() - t0) / 1000)
  await pub.endAsync(); await sub.endAsync()
  return rate
}

export async function benchHub(options: { latencyN: number; throughputN: number }): Promise<Row[]> {
  const dir = tempDir('trinity-bench-')
  const config = await testConfig(dir.path, {
    log: { level: 'info' },
    health: { interval: '30s', timeout: '5s' },
    tasks: { lease: '60s', keepFinished: 1_000_000 },
    routes: { general: { targets: ['noop'] } },
  })
  const file = writeConfig(dir.path, config)
  const hub = await spawnHub(file)
  const child = hub.child
  const url = hub.mqttUrl
  const rows: Row[] = []
  try {
    await new Promise((r) => setTimeout(r, 3000))
    const hubIdle = rssMb(child.pid ?? 0)
    const nodeIdle = await idleNodeRss()
    rows.push({ name: 'hub idle RSS', value: `${hubIdle.toFixed(1)} MB`, baselineName: 'idle `node -e`', baseline: `${nodeIdle.toFixed(1)} MB`, ratio: `${(hubIdle / nodeIdle).toFixed(2)}x` })

    const waiting = new Map<string, () => void>()
    let received = 0
    const instance = await noOpInstance(url, (id) => { received++; waiting.get(id)?.() })
    const submitter = await connect(url)
    await new Promise((r) => setTimeout(r, 300))

    // Latency: one task at a time, submit → the instance holds it.
    const warm = Math.min(200, options.latencyN)
    const samples: number[] = []
    for (let i = 0; i < options.latencyN + warm; i++) {
      const id = `lat-${i}`
      const assigned = new Promise<void>((r) => waiting.set(id, r))
      const t0 = performance.now()
      submitter.publish(topics.taskSubmit, JSON.stringify({ id, type: 'general', content: 'x' }), { qos: 1 })
      await assigned
      waiting.delete(id)
      if (i >= warm) samples.push(performance.now() - t0)
    }
    samples.sort((a, b) => a - b)
    const raw = await rawHop(url, options.latencyN)
    const p50 = percentile(samples, 0.5)
    const p99 = percentile(samples, 0.99)
    rows.push({ name: 'submit → assigned p50', value: `${p50.toFixed(3)} ms`, baselineName: 'raw QoS 1 hop p50', baseline: `${raw.p50.toFixed(3)} ms`, ratio: `+${(p50 - raw.p50).toFixed(3)} ms` })
    rows.push({ name: 'submit → assigned p99', value: `${p99.toFixed(3)} ms`, baselineName: 'raw QoS 1 hop p99', baseline: `${raw.p99.toFixed(3)} ms`, ratio: `+${(p99 - raw.p99).toFixed(3)} ms` })

    // Throughput: a burst of submissions; done when the hub has every one completed.
    const n = options.throughputN
    const before = received
    const hubCpu0 = cpuSeconds(child.pid ?? 0)
    const benchCpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < n; i++) submitter.publish(topics.taskSubmit, JSON.stringify({ id: `tp-${i}`, type: 'general', content: 'x' }), { qos: 1 })
    await waitFor(() => received - before >= n, 300_000, 'all tasks assigned')
    await waitFor(async () => {
      const r = await fetch(`${hub.httpUrl}/tasks?state=completed&limit=1`).then((x) => x.json() as Promise<TaskList>)
      return r.counts.completed >= n + options.latencyN + warm
    }, 300_000, 'all tasks completed')
    const elapsed = (performance.now() - t0) / 1000
    const tasksPerSecond = n / elapsed
    const hubCpu = cpuSeconds(child.pid ?? 0) - hubCpu0
    const benchCpu = process.cpuUsage(benchCpu0)
    const clientCpu = (benchCpu.user + benchCpu.system) / 1e6
    rows.push({ name: 'hub CPU per task', value: `${((hubCpu / n) * 1e6).toFixed(0)} µs (${((100 * hubCpu) / elapsed).toFixed(0)}% of a core)`, baselineName: 'clients\' CPU per task', baseline: `${((clientCpu / n) * 1e6).toFixed(0)} µs (${((100 * clientCpu) / elapsed).toFixed(0)}%)`, ratio: '' })
    const rawRate = await rawThroughput(url, n)
    rows.push({ name: 'tasks/s end to end', value: tasksPerSecond.toFixed(0), baselineName: 'raw QoS 1 msgs/s', baseline: rawRate.toFixed(0), ratio: `${(tasksPerSecond / rawRate).toFixed(3)}x` })
    await instance.endAsync(); await submitter.endAsync()
  } finally {
    await hub.kill('SIGTERM')
    dir.remove()
  }
  return rows
}
