/**
 * A test instance speaking the wire protocol with a bare MQTT.js client (the
 * agent SDK comes later and must not be what the hub's own tests rely on):
 * birth status with a session number, Last Will, persistent session, inbox,
 * heartbeats answering pings, and reports.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { Socket } from 'node:net'
import type { Report } from '../../src/contract/payloads/task.js'
import type { InboxFrame } from '../../src/contract/payloads/inbox.js'
import { topicsFor, type TopicContract } from '../../src/contract/topics.js'

export interface ReceivedTask {
  id: string
  type: string
  content: unknown
  priority: string
  leaseToken: string
  attempt: number
}

/** Its result, or the promise of it (awaited), is the task's output. */
export type TaskHandler = (task: ReceivedTask, instance: TestInstance) => unknown

export interface TestInstanceOptions {
  url: string
  id: string
  role?: string
  capabilities?: string[]
  concurrency?: number
  prefix?: string
  /** default: complete at once with `{ by: id }` */
  handler?: TaskHandler
  /** Do not handle tasks; just record them (for tests that drive reports by hand). */
  manual?: boolean
  clean?: boolean
  clientId?: string
  session?: number
  username?: string
  password?: string
  /** Also heartbeat every this many ms, unasked (as the agent SDK does); default only in answer to pings. */
  heartbeatMs?: number
}

/** Connects closed before a CONNACK that are tried again. */
const CONNECT_ATTEMPTS = 3

export class TestInstance {
  readonly received: ReceivedTask[] = []
  readonly messages: unknown[] = []
  readonly topics: TopicContract
  client!: MqttClient
  session: number
  private readonly waiters: { count: number; resolve: () => void }[] = []
  private beat: NodeJS.Timeout | undefined

  constructor(readonly options: TestInstanceOptions) {
    this.topics = topicsFor(options.prefix)
    this.session = options.session ?? Date.now()
  }

  get id(): string {
    return this.options.id
  }

  static async start(options: TestInstanceOptions): Promise<TestInstance> {
    const instance = new TestInstance(options)
    await instance.connect()
    return instance
  }

  async connect(): Promise<void> {
    const { options, topics } = this
    const status = topics.instanceStatus(options.id)
    const connectOptions: IClientOptions = {
      clientId: options.clientId ?? `instance-${options.prefix ?? 'trinity'}-${options.id}`.replaceAll('/', '-'),
      clean: options.clean ?? false,
      reconnectPeriod: 0,
      ...(options.username === undefined ? {} : { username: options.username, password: options.password ?? '' }),
      will: { topic: status, payload: Buffer.from(JSON.stringify({ state: 'offline', session: this.session })), qos: 1, retain: true },
    }
    // Without reconnects, MQTT.js's connectAsync never settles when the connection closes before a
    // CONNACK with no error (its CONNACK timeout, a hub still starting): allowRetries false makes that
    // a rejection, and such a close is tried again, as any client would; a refusal (an error) is not.
    for (let attempt = 1; ; attempt++) {
      try {
        this.client = await mqtt.connectAsync(options.url, connectOptions, false)
        break
      } catch (err) {
        if (attempt >= CONNECT_ATTEMPTS || (err as Error).message !== "Couldn't connect to server") throw err
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
    ;(this.client.stream as Partial<Socket>).setNoDelay?.(true)
    this.client.on('message', (_topic, payload) => this.onInbox(JSON.parse(payload.toString()) as InboxFrame))
    await this.client.subscribeAsync(topics.instanceInbox(options.id), { qos: 1 })
    await this.client.publishAsync(status, JSON.stringify({
      state: 'online', session: this.session,
      capabilities: options.capabilities ?? [], role: options.role ?? options.id, concurrency: options.concurrency ?? 4,
    }), { qos: 1, retain: true })
    if (options.heartbeatMs !== undefined && this.beat === undefined) {
      this.beat = setInterval(() => {
        if (this.client.connected) this.client.publish(topics.instanceHeartbeat(options.id), JSON.stringify({ ts: Date.now() }), { qos: 0 })
      }, options.heartbeatMs)
      this.beat.unref()
    }
  }

  /** Goes away without a Will (a clean DISCONNECT), keeping its session. */
  async disconnectQuietly(): Promise<void> {
    await this.client.endAsync()
  }

  /** Drops the TCP connection without DISCONNECT: the broker publishes the Will. */
  dropConnection(): void {
    this.client.stream.destroy()
    this.client.end(true)
  }

  async close(): Promise<void> {
    clearInterval(this.beat)
    await this.client.endAsync(true).catch(() => undefined)
  }

  report(report: Report): Promise<unknown> {
    return this.client.publishAsync(this.topics.instanceReport(this.id), JSON.stringify(report), { qos: 1 })
  }

  /** Resolves when at least `count` tasks have arrived. */
  waitForTasks(count: number, timeoutMs = 10_000): Promise<void> {
    if (this.received.length >= count) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id}: ${this.received.length}/${count} tasks after ${timeoutMs} ms`)), timeoutMs)
      this.waiters.push({ count, resolve: () => { clearTimeout(timer); resolve() } })
    })
  }

  private onInbox(frame: InboxFrame): void {
    switch (frame.kind) {
      case 'ping':
        void this.client.publishAsync(this.topics.instanceHeartbeat(this.id), JSON.stringify({ ts: Date.now(), nonce: frame.nonce }), { qos: 0 })
        return
      case 'message':
        this.messages.push(frame.message)
        return
      case 'cancel':
        return
      case 'task': {
        const task: ReceivedTask = { ...frame.task, leaseToken: frame.leaseToken, attempt: frame.attempt }
        this.received.push(task)
        for (const w of [...this.waiters]) if (this.received.length >= w.count) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve() }
        if (this.options.manual !== true) void this.run(task)
        return
      }
    }
  }

  private async run(task: ReceivedTask): Promise<void> {
    const base = { taskId: task.id, leaseToken: task.leaseToken }
    try {
      await this.report({ ...base, state: 'started' })
      const output = this.options.handler === undefined ? { by: this.id } : await this.options.handler(task, this)
      await this.report({ ...base, state: 'completed', output })
    } catch (err) {
      if (this.client.connected) await this.report({ ...base, state: 'failed', error: (err as Error).message }).catch(() => undefined)
    }
  }
}
