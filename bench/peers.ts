/**
 * Trinity beside the task queues a user would pick instead, driven by one
 * harness the same way: a producer submits durable tasks (the submit resolves
 * when the server has acknowledged it), a no-op worker completes each, and the
 * producer sees each completion. Per system:
 * - a burst of `burst` submissions, all in flight at once: tasks per second
 *   until the producer has seen every completion, and the server's CPU per task;
 * - `sequential` tasks one at a time: submit → completion seen, p50 / p99;
 * - the server's RSS idle and after the burst.
 * Rounds are interleaved (every system once, then again) so that a noisy
 * stretch of the machine does not land on one system only.
 *
 * Systems: the Trinity hub (embedded broker) at `store.sync: normal` and
 * `full`; BullMQ on redis-server with AOF `everysec` (its recommended setting),
 * `always`, and no persistence; NATS JetStream (nats-server, file storage,
 * work-queue stream, pull consumer); Trinity as a cluster (bench/cluster.ts:
 * 3 NATS nodes, leader + standby hub). redis-server and nats-server are
 * Debian's (`node scripts/ensure-system-deps.mjs --bench` installs them).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { freePort, spawnHub, tempDir, testConfig, waitFor, writeConfig } from '../test/helpers/hub.js'
import { cpuSeconds, percentile, rssMb } from './proc.js'
import type { InstanceList } from '../src/contract/http.js'
import { trinityClients } from './trinity-clients.js'
import { trinityCluster } from './cluster.js'

/** One system under test, as the harness drives it. */
export interface TaskSystem {
  readonly name: string
  /** Slow per write (an fsync, a replicated write): its burst is a fifth of the others' (a full-size one would take minutes); the burst column says so. */
  readonly smallBurst: boolean
  /** What an acknowledged submit means on this system. */
  readonly durability: string
  readonly serverPid: number
  /** Processes the server needs beside itself (a cluster's nodes): their CPU per task is reported too. */
  readonly supportPids?: { readonly label: string; readonly pids: readonly number[] }
  /** Resolves once the server has acknowledged the task. */
  submit(id: string): Promise<void>
  /** Every completion the producer sees. */
  onCompleted: (id: string) => void
  close(): Promise<void>
}

export interface PeerResult {
  round: number
  system: string
  burst: number
  durability: string
  burstPerSecond: number
  p50: number
  p99: number
  cpuPerTaskMs: number
  /** The support processes' CPU per task, all of them together, and what they are. */
  support?: { label: string; count: number; cpuPerTaskMs: number }
  rssIdleMb: number
  rssAfterMb: number
}

async function trinity(sync: 'normal' | 'full'): Promise<TaskSystem> {
  const dir = tempDir('trinity-bench-peer-')
  const config = await testConfig(dir.path, {
    log: { level: 'info' },
    store: { sync },
    health: { interval: '30s', timeout: '5s' },
    tasks: { lease: '60s', keepFinished: 1_000_000 },
    instances: [{ id: 'noop', concurrency: 1000 }],
    routes: { general: { targets: ['noop'] } },
  })
  const hub = await spawnHub(writeConfig(dir.path, config))
  const clients = await trinityClients({ worker: hub.mqttUrl, producer: hub.mqttUrl }, (id) => system.onCompleted(id))
  const system: TaskSystem = {
    name: sync === 'normal' ? TRINITY_BASE : `Trinity hub, store.sync ${sync}`,
    smallBurst: sync === 'full',
    durability: sync === 'full' ? 'task store fsynced before PUBACK' : 'on disk (WAL) before PUBACK',
    serverPid: hub.child.pid ?? 0,
    onCompleted: () => undefined,
    submit: (id) => clients.submit(id),
    async close() {
      await clients.close()
      await hub.kill('SIGTERM')
      dir.remove()
    },
  }
  await waitFor(async () => (await fetch(`${hub.httpUrl}/instances`).then((r) => r.json() as Promise<InstanceList>))
    .instances.some((i) => i.id === 'noop' && i.state === 'online'), 30_000, 'the no-op instance online')
  return system
}

function startServer(command: string, args: string[], ready: (line: string) => boolean, what: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      output += d.toString()
      if (output.split('\n').some(ready)) { child.stdout?.off('data', onData); child.stderr?.off('data', onData); resolve(child) }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${output}`)))
  })
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await exited
}

async function bullmq(aof: 'everysec' | 'always' | 'off'): Promise<TaskSystem> {
  const { Queue, Worker, QueueEvents } = await import('bullmq')
  const { Redis } = await import('ioredis')
  const dir = tempDir('trinity-bench-redis-')
  const port = await freePort()
  const persistence = aof === 'off' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', aof]
  const redis = await startServer('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir.path, '--save', '', ...persistence],
    (l) => l.includes('Ready to accept connections'), 'redis-server')
  // BullMQ 6 as an ES module takes constructed clients; workers need maxRetriesPerRequest: null.
  const clients: InstanceType<typeof Redis>[] = []
  const redisClient = (): InstanceType<typeof Redis> => {
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null })
    clients.push(client)
    return client
  }
  const name = 'bench'
  // QueueEvents reads an events stream that BullMQ trims to 10,000 entries by default: a burst of
  // 10,000 jobs (three events each) trims completions before QueueEvents reads them, and the burst
  // never "completes" (the BENCH_SCALE=0.5 stall). Room for every event of the largest burst.
  const queue = new Queue(name, { connection: redisClient(), streams: { events: { maxLen: 200_000 } } })
  const events = new QueueEvents(name, { connection: redisClient() })
  const worker = new Worker(name, async () => null, { connection: redisClient(), concurrency: 1000 })
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()])
  const system: TaskSystem = {
    name: `BullMQ + Redis, ${aof === 'off' ? 'no persistence' : `AOF ${aof}`}`,
    smallBurst: aof === 'always',
    durability: aof === 'always' ? 'AOF fsynced per write' : aof === 'everysec' ? 'AOF, fsync each second' : 'memory only',
    serverPid: redis.pid ?? 0,
    onCompleted: () => undefined,
    async submit(id) {
      await queue.add('task', { content: 'x' }, { jobId: id, removeOnComplete: true })
    },
    async close() {
      await worker.close(); await events.close(); await queue.close()
      // Clients passed in are the caller's to close (BullMQ closes only its own duplicates).
      for (const client of clients) client.disconnect()
      await stopServer(redis)
      dir.remove()
    },
  }
  events.on('completed', ({ jobId }) => system.onCompleted(jobId))
  return system
}

async function jetstream(): Promise<TaskSystem> {
  const { connect, AckPolicy, RetentionPolicy, StorageType } = await import('nats')
  const dir = tempDir('trinity-bench-nats-')
  const port = await freePort()
  const server = await startServer('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir.path],
    (l) => l.includes('Server is ready'), 'nats-server')
  const nc = await connect({ servers: `127.0.0.1:${port}` })
  const workerConn = await connect({ servers: `127.0.0.1:${port}` })
  const jsm = await nc.jetstreamManager()
  await jsm.streams.add({ name: 'TASKS', subjects: ['tasks.>'], retention: RetentionPolicy.Workqueue, storage: StorageType.File })
  await jsm.consumers.add('TASKS', { durable_name: 'noop', ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 })
  const producer = nc.jetstream()
  const consumer = await workerConn.jetstream().consumers.get('TASKS', 'noop')
  const messages = await consumer.consume({ max_messages: 1000 })
  void (async () => {
    for await (const m of messages) {
      m.ack()
      workerConn.publish(`done.${m.string()}`)
    }
  })()
  const system: TaskSystem = {
    name: 'NATS JetStream, file storage',
    smallBurst: false,
    durability: 'stream ack (file store)',
    serverPid: server.pid ?? 0,
    onCompleted: () => undefined,
    async submit(id) {
      await producer.publish('tasks.new', id, { msgID: id })
    },
    async close() {
      await messages.close()
      await workerConn.drain(); await nc.drain()
      await stopServer(server)
      dir.remove()
    },
  }
  const done = nc.subscribe('done.>')
  void (async () => { for await (const m of done) system.onCompleted(m.subject.slice(5)) })()
  await nc.flush()
  return system
}

async function measure(system: TaskSystem, options: { burst: number; sequential: number; round: number }): Promise<PeerResult> {
  const burst = system.smallBurst ? Math.max(1, Math.round(options.burst / 5)) : options.burst
  const completions = new Map<string, () => void>()
  let completed = 0
  system.onCompleted = (id) => { completed++; completions.get(id)?.() }
  const once = (id: string): Promise<void> => new Promise((resolve) => completions.set(id, resolve))
  const prefix = `r${options.round}-`

  // Warm-up, then idle RSS.
  for (let i = 0; i < 100; i++) { const done = once(`${prefix}w${i}`); await system.submit(`${prefix}w${i}`); await done }
  await new Promise((r) => setTimeout(r, 1000))
  const rssIdleMb = rssMb(system.serverPid)

  const samples: number[] = []
  for (let i = 0; i < options.sequential; i++) {
    const id = `${prefix}s${i}`
    const done = once(id)
    const t0 = performance.now()
    await system.submit(id)
    await done
    samples.push(performance.now() - t0)
    completions.delete(id)
  }
  samples.sort((a, b) => a - b)

  const before = completed
  const cpu0 = cpuSeconds(system.serverPid)
  const supportPids = system.supportPids?.pids ?? []
  const supportCpu = (): number => supportPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)
  const supportCpu0 = supportCpu()
  const t0 = performance.now()
  const acks: Promise<void>[] = []
  for (let i = 0; i < burst; i++) acks.push(system.submit(`${prefix}b${i}`))
  await Promise.all(acks)
  await waitFor(() => completed - before >= burst, 600_000, `${system.name}: the burst completed`)
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(system.serverPid) - cpu0
  const supportSeconds = supportCpu() - supportCpu0
  await new Promise((r) => setTimeout(r, 1000))
  return {
    round: options.round,
    system: system.name,
    burst,
    durability: system.durability,
    burstPerSecond: burst / seconds,
    p50: percentile(samples, 0.5),
    p99: percentile(samples, 0.99),
    cpuPerTaskMs: (cpu / burst) * 1000,
    ...(system.supportPids === undefined ? {} : { support: { label: system.supportPids.label, count: supportPids.length, cpuPerTaskMs: (supportSeconds / burst) * 1000 } }),
    rssIdleMb,
    rssAfterMb: rssMb(system.serverPid),
  }
}

const SYSTEMS: { key: string; start: () => Promise<TaskSystem> }[] = [
  { key: 'trinity-normal', start: () => trinity('normal') },
  { key: 'trinity-full', start: () => trinity('full') },
  { key: 'bullmq-everysec', start: () => bullmq('everysec') },
  { key: 'bullmq-always', start: () => bullmq('always') },
  { key: 'bullmq-off', start: () => bullmq('off') },
  { key: 'jetstream', start: () => jetstream() },
  { key: 'trinity-cluster', start: () => trinityCluster() },
]

/** Every system `rounds` times, interleaved; one result per system and round. */
export async function benchPeers(options: { burst: number; sequential: number; rounds: number; only?: readonly string[] }): Promise<PeerResult[]> {
  const chosen = SYSTEMS.filter((s) => options.only === undefined || options.only.includes(s.key))
  const results: PeerResult[] = []
  for (let round = 1; round <= options.rounds; round++) {
    for (const { start } of chosen) {
      const system = await start()
      try {
        results.push(await measure(system, { ...options, round }))
      } finally {
        await system.close()
      }
    }
  }
  return results
}

const TRINITY_BASE = 'Trinity hub, store.sync normal'

/** The results as one table, each system's ratio to Trinity (store.sync normal) of the same round. */
export function peersTable(results: PeerResult[]): string {
  const header = ['system', 'durability', 'burst', 'burst tasks/s', 'Trinity ÷ it', 'submit → completion p50 / p99', 'server CPU / task', 'server RSS idle → after']
  const base = new Map(results.filter((r) => r.system === TRINITY_BASE).map((r) => [r.round, r]))
  const rows = results.map((r) => {
    const trinityRate = base.get(r.round)?.burstPerSecond ?? NaN
    return [
      `${r.system} (round ${r.round})`, r.durability, String(r.burst), r.burstPerSecond.toFixed(0), `${(trinityRate / r.burstPerSecond).toFixed(2)}x`,
      `${r.p50.toFixed(2)} / ${r.p99.toFixed(2)} ms`,
      `${r.cpuPerTaskMs.toFixed(3)} ms${r.support === undefined ? '' : ` + ${r.support.label} ${r.support.cpuPerTaskMs.toFixed(3)} ms (${r.support.count} nodes)`}`, `${r.rssIdleMb.toFixed(0)} → ${r.rssAfterMb.toFixed(0)} MB`,
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((l) => (l[i] ?? '').length)))
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(fmt)].join('\n')
}

export const PEER_KEYS = SYSTEMS.map((s) => s.key)
