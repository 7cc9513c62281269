/**
 * QoS 1 round-trip latency of the embedded broker against plain Aedes and
 * Mosquitto, for the shapes that matter to agents (why they differ: see
 * broker/socket-writer.ts):
 *  - one-connection: one MQTT.js client subscribed to t publishes to t and
 *    awaits both its PUBACK and the message (agents, request/response
 *    clients), at QoS 1 and at QoS 2;
 *  - agent: A publishes to inbox, B (subscribed) republishes to report, A
 *    awaits it; optionally with A calling setNoDelay(true);
 *  - one-hop: publisher and subscriber on two connections.
 * Every broker runs in its own process: in-process, the shared event loop
 * hides exactly the TCP timing this measures.
 *
 * Run: `node dist/bench/broker-latency.js [roundTrips]` (default 200).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'

export type Shape = 'one-connection' | 'agent' | 'one-hop'

export interface RoundTripOptions {
  readonly shape?: Shape
  /** agent shape: the requester (A) calls setNoDelay(true) on its socket. */
  readonly requesterNoDelay?: boolean
  /** Round trips run first and not counted. */
  readonly warmup?: number
  /** QoS of every publish and subscription (default 1). */
  readonly qos?: 1 | 2
}

export interface RoundTripStats {
  /** Milliseconds. */
  readonly p50: number
  readonly p99: number
}

const MOSQUITTO = '/usr/sbin/mosquitto'

/** Measures `n` sequential QoS 1 (or 2) round trips of one shape against the broker at `url`. */
export async function measureRoundTrips(url: string, n: number, options: RoundTripOptions = {}): Promise<RoundTripStats> {
  const shape = options.shape ?? 'one-connection'
  const qos = options.qos ?? 1
  const base = `bench/${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const clients: MqttClient[] = []
  const connect = async (): Promise<MqttClient> => {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
    clients.push(client)
    return client
  }
  let received: (() => void) | undefined
  try {
    let requester: MqttClient
    let sendTopic: string
    let replyTopic: string
    if (shape === 'one-connection') {
      requester = await connect()
      sendTopic = replyTopic = `${base}/t`
    } else {
      requester = await connect()
      const responder = await connect()
      sendTopic = `${base}/inbox`
      replyTopic = shape === 'agent' ? `${base}/report` : sendTopic
      await responder.subscribeAsync(sendTopic, { qos })
      if (shape === 'agent') {
        responder.on('message', (_topic, payload) => responder.publish(replyTopic, payload, { qos }))
      }
      if (shape === 'one-hop') {
        // Round trip = publisher's PUBACK and subscriber's delivery, both awaited.
        responder.on('message', () => received?.())
      }
      if (options.requesterNoDelay === true) {
        const socket: unknown = requester.stream
        if (socket !== null && typeof socket === 'object' && 'setNoDelay' in socket && typeof socket.setNoDelay === 'function') {
          (socket.setNoDelay as (noDelay: boolean) => void)(true)
        }
      }
    }
    if (shape !== 'one-hop') {
      await requester.subscribeAsync(replyTopic, { qos })
      requester.on('message', () => received?.())
    }
    const warmup = options.warmup ?? 20
    const samples: number[] = []
    for (let i = 0; i < warmup + n; i++) {
      const arrived = new Promise<void>((resolve) => (received = resolve))
      const started = performance.now()
      await requester.publishAsync(sendTopic, `round trip ${i}`, { qos })
      await arrived
      if (i >= warmup) samples.push(performance.now() - started)
    }
    return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) }
  } finally {
    await Promise.all(clients.map((client) => client.endAsync(true)))
  }
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN
}

// ---- running brokers in child processes -------------------------------------

interface RunningBroker {
  readonly name: string
  readonly url: string
  stop(): Promise<void>
}

/** Child mode: serve one broker on an ephemeral port and print `{"port": N}`. */
async function serve(kind: string): Promise<void> {
  let port: number
  if (kind === 'trinity') {
    const { startEmbeddedBroker } = await import('../broker/embedded.js')
    const { topicsFor } = await import('../src/contract/topics.js')
    const { silentLogger } = await import('../src/log.js')
    const broker = await startEmbeddedBroker({
      host: '127.0.0.1', port: 0, persistence: 'memory', dataDir: tmpdir(),
      auth: { enabled: false, users: [] }, topics: topicsFor(), logger: silentLogger(),
    })
    port = broker.port
  } else {
    // Plain Aedes exactly as its README shows it.
    const { Aedes } = await import('aedes')
    const aedes = await Aedes.createBroker()
    const server = createServer(aedes.handle)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    port = typeof address === 'object' && address !== null ? address.port : 0
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`)
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return typeof address === 'object' && address !== null ? address.port : 0
}

function startChild(name: string, command: string, args: string[], portFrom: (line: string) => number | undefined): Promise<RunningBroker> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      for (const line of output.split('\n')) {
        const port = portFrom(line)
        if (port === undefined) continue
        child.stdout?.off('data', onData)
        child.stderr?.off('data', onData)
        resolve({ name, url: `mqtt://127.0.0.1:${port}`, stop: () => stopChild(child) })
        return
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${output}`)))
  })
}

/** SIGTERM, then SIGKILL if it has not exited within 2 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
  await exited
  clearTimeout(timer)
}

async function startMosquitto(dir: string): Promise<RunningBroker> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  await writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`)
  const running = await startChild('mosquitto', MOSQUITTO, ['-v', '-c', conf], (line) =>
    line.includes('Opening ipv4 listen socket') ? port : undefined,
  )
  return running
}

const ROWS: ReadonlyArray<{ label: string; options: RoundTripOptions }> = [
  { label: 'one connection, default client', options: { shape: 'one-connection' } },
  { label: 'one connection, QoS 2', options: { shape: 'one-connection', qos: 2 } },
  { label: 'agent, default clients', options: { shape: 'agent' } },
  { label: 'agent, requester setNoDelay', options: { shape: 'agent', requesterNoDelay: true } },
  { label: 'one hop, two connections', options: { shape: 'one-hop' } },
]

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 200)
  const self = fileURLToPath(import.meta.url)
  const dir = await mkdtemp(join(tmpdir(), 'trinity-bench-'))
  const portLine = (line: string): number | undefined => {
    try {
      const parsed: unknown = JSON.parse(line)
      return typeof parsed === 'object' && parsed !== null && 'port' in parsed && typeof parsed.port === 'number' ? parsed.port : undefined
    } catch {
      return undefined
    }
  }
  const brokers: RunningBroker[] = []
  try {
    brokers.push(await startChild('trinity', process.execPath, [self, '--serve', 'trinity'], portLine))
    brokers.push(await startChild('plain aedes', process.execPath, [self, '--serve', 'aedes'], portLine))
    if (existsSync(MOSQUITTO)) brokers.push(await startMosquitto(dir))
    console.log(`QoS 1 (or 2) round trips, MQTT.js, ${n} per cell (after 20 warm-up), p50 / p99 in ms`)
    const header = ['shape', ...brokers.map((b) => b.name)]
    const table: string[][] = [header]
    for (const row of ROWS) {
      const cells = [row.label]
      for (const broker of brokers) {
        const stats = await measureRoundTrips(broker.url, n, row.options)
        cells.push(`${stats.p50.toFixed(2)} / ${stats.p99.toFixed(2)}`)
      }
      table.push(cells)
    }
    const widths = header.map((_, column) => Math.max(...table.map((cells) => (cells[column] ?? '').length)))
    for (const cells of table) console.log(cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '))
  } finally {
    await Promise.all(brokers.map((broker) => broker.stop()))
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const serveIndex = process.argv.indexOf('--serve')
  const run = serveIndex >= 0 ? serve(process.argv[serveIndex + 1] ?? 'trinity') : main()
  run.catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
