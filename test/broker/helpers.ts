/**
 * Shared setup for the broker tests: an embedded broker on an ephemeral
 * port, real MQTT.js clients, temp directories, all torn down by `t.after`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { startEmbeddedBroker, type EmbeddedBroker, type EmbeddedBrokerOptions } from '../../broker/embedded.js'
import { topicsFor } from '../../src/contract/topics.js'
import { pino } from 'pino'
import { silentLogger, type Logger } from '../../src/log.js'

export const topics = topicsFor('trinity')

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trinity-broker-test-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export async function startBroker(t: TestContext, overrides: Partial<EmbeddedBrokerOptions> = {}): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker({
    host: '127.0.0.1',
    port: 0,
    persistence: 'memory',
    dataDir: tmpdir(),
    auth: { enabled: false, users: [] },
    topics,
    logger: silentLogger(),
    ...overrides,
  })
  t.after(() => broker.close())
  return broker
}

export function tcpUrl(broker: EmbeddedBroker): string {
  return `mqtt://127.0.0.1:${broker.port}`
}

/** A connected client that never reconnects on its own and is closed after the test. */
export async function connect(t: TestContext, url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
  t.after(() => client.endAsync(true))
  return client
}

export interface Received {
  readonly topic: string
  readonly payload: string
}

/** The next message on `client` whose topic satisfies `accept` (fails after 5 s). */
export function nextMessage(client: MqttClient, accept: (topic: string) => boolean = () => true): Promise<Received> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage)
      reject(new Error('no matching message within 5 s'))
    }, 5000)
    const onMessage = (topic: string, payload: Buffer): void => {
      if (!accept(topic)) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve({ topic, payload: payload.toString() })
    }
    client.on('message', onMessage)
  })
}

/** Collects every message `client` receives from now on. */
export function record(client: MqttClient): Received[] {
  const seen: Received[] = []
  client.on('message', (topic: string, payload: Buffer) => seen.push({ topic, payload: payload.toString() }))
  return seen
}

/** A logger whose JSON records land in `records`, to see what the broker says. */
export function captureLog(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = []
  const sink = new Writable({ write(chunk: Buffer, _encoding, done) { records.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  return { logger: pino({ level: 'info' }, sink), records }
}

/** What a refused `mqtt.connectAsync` rejects with: the CONNACK return code. */
export function connackCode(error: unknown): number | undefined {
  return (error as { code?: number }).code
}
