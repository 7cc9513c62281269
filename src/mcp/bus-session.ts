/**
 * `trinity mcp` on the bus: an instance by the topic contract (docs/topics.md),
 * like the agent SDK, whose connection it shares (src/net/instance-connection.ts):
 * a persistent session under the instance id's client id, a retained birth and
 * a Will with one session number, heartbeats and answers to the hub's pings,
 * reports on its report topic, messages on the message topics.
 *
 * Durable before acknowledged: MQTT.js sends a QoS 1 PUBACK only when
 * `client.handleMessage(packet, callback)` calls back (mqtt's
 * lib/handlers/publish.js, case 1). This session replaces that method: an
 * inbox frame is written to the journal first, and the callback, hence the
 * PUBACK, follows. A process killed before the write never acknowledged the
 * frame, and the broker delivers it again to the next connection with this
 * client id [MQTT-4.4.0-1]. Every publish to this client goes through here,
 * including what a persistent session's queue sends right behind the CONNACK.
 */
import type { IPublishPacket, MqttClient } from 'mqtt'
import { randomUUID } from 'node:crypto'
import { TERMINAL_TASK_STATES } from '../contract/constants.js'
import { decodeInboxFrame } from '../contract/payloads/inbox-decode.js'
import type { Message } from '../contract/payloads/message.js'
import { TaskEvent, type Report } from '../contract/payloads/task.js'
import { decode } from '../contract/payloads/validate.js'
import { topicsFor, type TopicContract } from '../contract/topics.js'
import { TrinityError } from '../errors.js'
import { connectInstance, isOwnWill, type InstanceConnectionOptions } from '../net/instance-connection.js'
import type { JournalEntry, Journal } from './journal.js'

export interface BusSessionOptions extends InstanceConnectionOptions {
  readonly capabilities: readonly string[]
  readonly role?: string | undefined
  readonly name?: string | undefined
  readonly concurrency: number
  /** Heartbeat period in ms (default 10,000); pings are answered at once regardless. */
  readonly heartbeatMs?: number
}

export interface BusSessionEvents {
  /** A new frame is in the journal (not a duplicate). */
  arrived(entry: JournalEntry): void
  /** What this session dropped or could not do, in words (logged to stderr by the caller). */
  warn(message: string): void
  /** Tasks this instance is working on now, for heartbeats. */
  inFlight(): number
}

export class BusSession {
  private readonly topics: TopicContract
  private readonly session = Date.now()
  private heartbeat: NodeJS.Timeout | undefined
  private readonly eventWaiters = new Map<string, Set<(event: TaskEvent) => void>>()
  private saidOffline = false
  private client: MqttClient | undefined

  constructor(
    private readonly options: BusSessionOptions,
    private readonly journal: Journal,
    private readonly events: BusSessionEvents,
  ) {
    this.topics = topicsFor(options.prefix)
  }

  get id(): string {
    return this.options.id
  }

  get connected(): boolean {
    return this.client?.connected === true
  }

  async open(): Promise<void> {
    const client = await connectInstance(this.options, this.session, (c) => {
      c.handleMessage = (packet, callback) => this.onPublish(packet, callback)
    })
    this.client = client
    client.on('connect', () => void this.publishStatus('online'))
    client.on('error', (err) => this.events.warn(`bus: ${err.message}`))
    await client.subscribeAsync({ [this.topics.instanceInbox(this.id)]: { qos: 1 }, [this.topics.instanceStatus(this.id)]: { qos: 1 } })
    await this.publishStatus('online')
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs ?? 10_000)
    this.heartbeat.unref()
  }

  /** Publishes a report (QoS 1; resolves on the broker's PUBACK). */
  async report(report: Report): Promise<void> {
    await this.bus().publishAsync(this.topics.instanceReport(this.id), JSON.stringify(report), { qos: 1 })
  }

  async send(to: string, text: string, replyTo?: string): Promise<Message> {
    const message: Message = { id: randomUUID(), from: this.id, to, message: text, ts: Date.now(), ...(replyTo === undefined ? {} : { replyTo }) }
    await this.bus().publishAsync(this.topics.message(this.id, to), JSON.stringify(message), { qos: 1 })
    return message
  }

  /**
   * Subscribes to a task's events; `ready` resolves once the broker granted
   * the subscription (submit after it, so no event is missed), `terminal` with
   * the first event in a terminal state, or undefined after `timeoutMs` or `cancel()`.
   */
  watchTask(taskId: string, timeoutMs: number): { ready: Promise<void>; terminal: Promise<TaskEvent | undefined>; cancel: () => void } {
    const topic = this.topics.taskEvent(taskId)
    let listener: ((event: TaskEvent) => void) | undefined
    let cancel = (): void => undefined
    const terminal = new Promise<TaskEvent | undefined>((resolve) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs)
      const finish = (event: TaskEvent | undefined): void => {
        clearTimeout(timer)
        const set = this.eventWaiters.get(taskId)
        if (listener !== undefined) set?.delete(listener)
        if (set?.size === 0) {
          this.eventWaiters.delete(taskId)
          this.client?.unsubscribe(topic)
        }
        resolve(event)
      }
      listener = (event) => { if (TERMINAL_TASK_STATES.has(event.state)) finish(event) }
      cancel = () => finish(undefined)
      const set = this.eventWaiters.get(taskId) ?? new Set()
      set.add(listener)
      this.eventWaiters.set(taskId, set)
    })
    // A rejection, not a throw: the caller cancels the watch when it fails.
    const ready = (async () => { await this.bus().subscribeAsync(topic, { qos: 1 }) })()
    return { ready, terminal, cancel }
  }

  /** Says offline (retained, so the hub need not wait for the Will) and disconnects. */
  async close(): Promise<void> {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
    const client = this.client
    if (client === undefined) return
    this.saidOffline = true
    if (client.connected) await this.publishStatus('offline').catch(() => undefined)
    await client.endAsync()
  }

  /** The client, connected: a publish while offline would wait for the reconnect, and the tool with it. */
  private bus(): MqttClient {
    if (this.client === undefined) throw new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `${this.id}: not connected to the bus yet`)
    if (!this.client.connected) throw new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `${this.id}: the bus connection is down (reconnecting)`)
    return this.client
  }

  private onPublish(packet: IPublishPacket, callback: (error?: Error) => void): void {
    const topic = this.topics.parse(packet.topic)
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload)
    try {
      if (topic?.kind === 'instanceInbox') this.onFrame(payload)
      else if (topic?.kind === 'instanceStatus') this.onOwnStatus(payload)
      else if (topic?.kind === 'taskEvent') this.onTaskEvent(topic.taskId, payload)
    } catch (err) {
      // Not acknowledged: without the PUBACK the broker delivers the frame again on the next connection.
      this.events.warn(`could not journal an inbox frame, not acknowledging it: ${(err as Error).message}`)
      this.client?.stream.destroy()
      return
    }
    callback()
  }

  private onFrame(payload: Buffer): void {
    const decoded = decodeInboxFrame(payload)
    if (!decoded.ok) return this.events.warn(`${this.id}: dropped an inbox frame: ${decoded.reason}`)
    const frame = decoded.value
    if (frame.kind === 'ping') return this.beat(frame.nonce)
    const now = Date.now()
    const recorded = this.journal.record(frame, now)
    if (recorded !== 'duplicate') this.events.arrived({ seq: recorded.seq, receivedAt: now, frame })
  }

  /** Rebirth: see AgentImpl.onOwnStatus; a restarted broker may publish our own old Will after we reconnected. */
  private onOwnStatus(payload: Buffer): void {
    if (isOwnWill(payload, this.session) && this.client?.connected === true && !this.saidOffline) void this.publishStatus('online')
  }

  private onTaskEvent(taskId: string, payload: Buffer): void {
    const decoded = decode(TaskEvent, payload)
    if (!decoded.ok) return this.events.warn(`task ${taskId}: dropped an event: ${decoded.reason}`)
    for (const listener of [...(this.eventWaiters.get(taskId) ?? [])]) listener(decoded.value)
  }

  private publishStatus(state: 'online' | 'offline'): Promise<unknown> {
    const status = {
      state, session: this.session, capabilities: [...this.options.capabilities], role: this.options.role ?? this.id,
      name: this.options.name ?? this.id, concurrency: this.options.concurrency, pid: process.pid,
    }
    return this.bus().publishAsync(this.topics.instanceStatus(this.id), JSON.stringify(status), { qos: 1, retain: true })
  }

  private beat(nonce?: string): void {
    if (this.saidOffline || this.client === undefined) return
    const heartbeat = { ts: Date.now(), inFlight: this.events.inFlight(), ...(nonce === undefined ? {} : { nonce }) }
    this.client.publish(this.topics.instanceHeartbeat(this.id), JSON.stringify(heartbeat), { qos: 0 })
  }
}
