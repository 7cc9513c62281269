/**
 * The agent SDK: a worker joins the fleet in a few lines.
 *
 *   const agent = await connectAgent({ id: 'builder', handlers: {
 *     build_project: async (content, ctx) => { ctx.progress('scaffolding'); return { files } },
 *   } })
 *
 * It speaks only the topic contract, over MQTT (it never imports the
 * coordinator, so it runs on any machine that reaches the broker): a
 * persistent session, a retained birth status and a Last Will carrying the
 * same session number, heartbeats answering the hub's pings, started /
 * progress / completed / failed reports echoing the lease token, a
 * concurrency limit, and a drain that finishes running work before leaving.
 */
import type { MqttClient } from 'mqtt'
import { randomUUID } from 'node:crypto'
import type { Priority } from '../contract/constants.js'
import type { Report } from '../contract/payloads/task.js'
import { decodeInboxFrame, type InboxFrame } from '../contract/payloads/inbox.js'
import { DEFAULT_CONCURRENCY } from '../contract/payloads/instance.js'
import type { Message } from '../contract/payloads/message.js'
import { topicsFor, type TopicContract } from '../contract/topics.js'
import { ENV } from '../config/env.js'
import { TrinityError } from '../errors.js'
import { clientIds, connectBus, type BusClientOptions } from '../net/bus-client.js'
import { drainOnSignals, forgetOnSignals } from './signals.js'

/** Thrown by a handler when trying again cannot help (bad input, say): the hub fails the task at once instead of retrying it. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError'
}

export interface AgentOptions {
  id: string
  /** Default: $TRINITY_MQTT_URL or mqtt://127.0.0.1:1883. */
  url?: string
  capabilities?: string[]
  /**
   * Handlers registered before the birth, so the very first birth (also the
   * first after a restart) announces their task types; handle() later adds more.
   */
  handlers?: Readonly<Record<string, TaskHandler>>
  role?: string
  name?: string
  /** Tasks run at once (default DEFAULT_CONCURRENCY, 4, as the hub assumes); the hub sends no more than this. */
  concurrency?: number
  prefix?: string
  /**
   * The bus login when the broker has auth on (`broker.auth.users`: an
   * `instance` user whose username is this agent's id). Default:
   * $TRINITY_MQTT_USERNAME / $TRINITY_MQTT_PASSWORD, which `trinity start`
   * sets for each instance from that user.
   */
  username?: string
  password?: string
  /** Heartbeat period in ms (default 10,000); pings are answered at once regardless. */
  heartbeatMs?: number
  /**
   * Drain on SIGTERM / SIGINT (default true). The SDK never exits the process
   * itself: after the drain, a host that listens to the signal too decides;
   * otherwise the signal is raised again and ends the process as it would have
   * without the SDK (killed by that signal). false: the host calls drain().
   */
  handleSignals?: boolean
  /**
   * What the agent dropped rather than acted on, with the reason: an inbox
   * frame that is not JSON or not an InboxFrame (code TRINITY_ERR_BAD_REQUEST).
   * The agent keeps running. Default: process.emitWarning (stderr, unless the
   * host handles 'warning'); the SDK never writes to stdout.
   */
  onError?: (error: TrinityError) => void
  /** How long to keep trying while the broker refuses connections, e.g. while the hub starts (default 30,000 ms). */
  waitForBusMs?: number
}

export interface TaskContext {
  readonly taskId: string
  readonly type: string
  readonly priority: Priority
  readonly attempt: number
  /** Aborted when the hub cancels the task or the agent stops. */
  readonly signal: AbortSignal
  /** Reports progress (anything JSON) and renews the lease. */
  progress(output: unknown): void
}

export type TaskHandler = (content: unknown, context: TaskContext) => unknown

export interface Agent {
  readonly id: string
  handle(type: string, handler: TaskHandler): Agent
  /** `replyTo`: the id of the message this answers (so no one answers the answer). */
  send(to: string, message: string, options?: { replyTo?: string }): Promise<Message>
  onMessage(listener: (message: Message) => void): Agent
  /** Tasks running now. */
  readonly running: number
  /** Takes no more work, finishes what runs, says offline, disconnects. */
  drain(): Promise<void>
}

type TaskFrame = Extract<InboxFrame, { kind: 'task' }>
/** Messages held for a listener not attached yet (an agent may never attach one): the oldest go first beyond these. */
const EARLY_MESSAGES = 100
const EARLY_CHARACTERS = 1_000_000

class AgentImpl implements Agent {
  private readonly handlers = new Map<string, TaskHandler>()
  private readonly listeners: ((message: Message) => void)[] = []
  /** Messages that arrived before the first onMessage() (a persistent session delivers at once): held for it. */
  private early: Message[] = []
  private earlyCharacters = 0
  private readonly active = new Map<string, { controller: AbortController; done: Promise<void> }>()
  private readonly waiting: TaskFrame[] = []
  private unhandled: TaskFrame[] = []
  private readonly topics: TopicContract
  private heartbeat: NodeJS.Timeout | undefined
  private draining: Promise<void> | undefined
  /**
   * Set as the offline status goes out: a ping answered after it reached the
   * hub behind the offline status, and counted as a pass, showed a gone agent online.
   */
  private saidOffline = false

  constructor(
    private readonly options: AgentOptions,
    private readonly client: MqttClient,
    /** Also in the Last Will: the hub ignores a Will older than the current birth. */
    private readonly session: number,
    /** Publishes that came with the CONNACK, before start(): see connectHolding. */
    private readonly held: Held,
  ) {
    this.topics = topicsFor(options.prefix)
    for (const [type, handler] of Object.entries(options.handlers ?? {})) this.handlers.set(type, handler)
  }

  get id(): string {
    return this.options.id
  }

  get running(): number {
    return this.active.size
  }

  async start(): Promise<void> {
    const ownStatus = this.topics.instanceStatus(this.id)
    const onPublish = (topic: string, payload: Buffer): void => (topic === ownStatus ? this.onOwnStatus(payload) : this.onFrame(payload))
    this.client.off('message', this.held.listener)
    this.client.on('message', onPublish)
    for (const [topic, payload] of this.held.messages.splice(0)) onPublish(topic, payload)
    this.client.on('connect', () => void this.publishStatus('online'))
    await this.client.subscribeAsync({ [this.topics.instanceInbox(this.id)]: { qos: 1 }, [ownStatus]: { qos: 1 } })
    await this.publishStatus('online')
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs ?? 10_000)
    this.heartbeat.unref()
  }

  handle(type: string, handler: TaskHandler): Agent {
    this.handlers.set(type, handler)
    // Work for a declared capability that arrived before its handler did.
    const early = this.unhandled.filter((f) => f.task.type === type)
    this.unhandled = this.unhandled.filter((f) => f.task.type !== type)
    for (const frame of early) this.accept(frame)
    if (this.draining === undefined) void this.publishStatus('online')
    return this
  }

  onMessage(listener: (message: Message) => void): Agent {
    this.listeners.push(listener)
    const early = this.early
    this.early = []
    this.earlyCharacters = 0
    for (const message of early) listener(message)
    return this
  }

  async send(to: string, text: string, options: { replyTo?: string } = {}): Promise<Message> {
    const message: Message = { id: randomUUID(), from: this.id, to, message: text, ts: Date.now(), ...(options.replyTo === undefined ? {} : { replyTo: options.replyTo }) }
    await this.client.publishAsync(this.topics.message(this.id, to), JSON.stringify(message), { qos: 1 })
    return message
  }

  drain(): Promise<void> {
    this.draining ??= (async () => {
      forgetOnSignals(this)
      await this.publishStatus('draining')
      this.waiting.length = 0 // never started: the hub's lease re-queues them
      this.unhandled = []
      await Promise.allSettled([...this.active.values()].map((a) => a.done))
      if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
      this.saidOffline = true
      await this.publishStatus('offline')
      await this.client.endAsync()
    })()
    return this.draining
  }

  private get concurrency(): number {
    return this.options.concurrency ?? DEFAULT_CONCURRENCY
  }

  private capabilities(): string[] {
    return [...new Set([...(this.options.capabilities ?? []), ...this.handlers.keys()])]
  }

  private publishStatus(state: 'online' | 'draining' | 'offline'): Promise<unknown> {
    const status = {
      state, session: this.session, capabilities: this.capabilities(), role: this.options.role ?? this.id,
      name: this.options.name ?? this.id, concurrency: this.concurrency, pid: process.pid,
    }
    return this.client.publishAsync(this.topics.instanceStatus(this.id), JSON.stringify(status), { qos: 1, retain: true })
  }

  /**
   * Rebirth. A restarted broker publishes the Will of every connection the
   * old one lost, possibly after this agent has reconnected and said online:
   * the hub would then count a live agent as gone. An offline status for our
   * own session while we are connected is answered with a fresh birth.
   */
  private onOwnStatus(payload: Buffer): void {
    let status: { state?: unknown; session?: unknown }
    try { status = JSON.parse(payload.toString('utf8')) as typeof status } catch { return }
    if (status.state === 'offline' && status.session === this.session && this.client.connected && this.draining === undefined) {
      void this.publishStatus('online')
    }
  }

  private beat(nonce?: string): void {
    if (this.saidOffline) return
    const heartbeat = { ts: Date.now(), inFlight: this.active.size, ...(nonce === undefined ? {} : { nonce }) }
    this.client.publish(this.topics.instanceHeartbeat(this.id), JSON.stringify(heartbeat), { qos: 0 })
  }

  private report(report: Report): void {
    this.client.publish(this.topics.instanceReport(this.id), JSON.stringify(report), { qos: 1 })
  }

  /**
   * Anyone allowed to publish on the inbox can send anything: a frame that is
   * not an InboxFrame is dropped with its reason (never half-acted on, and
   * never a TypeError that ends the host process).
   */
  private onFrame(payload: Buffer): void {
    const decoded = decodeInboxFrame(payload)
    if (!decoded.ok) {
      const error = new TrinityError('TRINITY_ERR_BAD_REQUEST', `${this.id}: dropped an inbox frame: ${decoded.reason}`)
      if (this.options.onError !== undefined) this.options.onError(error)
      else process.emitWarning(error.message, { code: error.code })
      return
    }
    const frame = decoded.value
    switch (frame.kind) {
      case 'ping':
        return this.beat(frame.nonce)
      case 'message':
        if (this.listeners.length === 0) {
          this.early.push(frame.message)
          this.earlyCharacters += frame.message.message.length
          while (this.early.length > 1 && (this.early.length > EARLY_MESSAGES || this.earlyCharacters > EARLY_CHARACTERS)) {
            this.earlyCharacters -= this.early.shift()?.message.length ?? 0
          }
        }
        for (const listener of this.listeners) listener(frame.message)
        return
      case 'cancel':
        this.active.get(frame.taskId)?.controller.abort(new TrinityError('TRINITY_ERR_TASK_CONFLICT', 'cancelled by the hub'))
        return
      case 'task':
        // The birth goes out before the caller's handle() calls: hold work
        // for a declared capability until its handler is there.
        if (!this.handlers.has(frame.task.type) && (this.options.capabilities ?? []).includes(frame.task.type)) {
          this.unhandled.push(frame)
          return
        }
        this.accept(frame)
        return
    }
  }

  private accept(frame: TaskFrame): void {
    if (this.draining !== undefined || this.active.has(frame.task.id)) return
    if (this.active.size >= this.concurrency) this.waiting.push(frame)
    else this.run(frame)
  }

  private run(frame: TaskFrame): void {
    const { task, leaseToken } = frame
    const controller = new AbortController()
    const base = { taskId: task.id, leaseToken }
    const context: TaskContext = {
      taskId: task.id, type: task.type, priority: task.priority, attempt: frame.attempt, signal: controller.signal,
      progress: (output) => this.report({ ...base, state: 'progress', output }),
    }
    // In the map before the handler runs: a handler that fails at once must not leave it behind.
    const entry = { controller, done: Promise.resolve() }
    this.active.set(task.id, entry)
    entry.done = (async () => {
      this.report({ ...base, state: 'started' })
      try {
        const handler = this.handlers.get(task.type)
        if (handler === undefined) throw new Error(`no handler for task type ${task.type} on ${this.id}`)
        const output: unknown = await handler(task.content, context)
        if (!controller.signal.aborted) this.report({ ...base, state: 'completed', output: output ?? null })
      } catch (err) {
        if (!controller.signal.aborted) {
          this.report({ ...base, state: 'failed', error: err instanceof Error ? err.message : String(err), ...(err instanceof NonRetryableError ? { retryable: false } : {}) })
        }
      } finally {
        this.active.delete(task.id)
        const next = this.waiting.shift()
        if (next !== undefined && this.draining === undefined) this.run(next)
      }
    })()
  }
}

interface Held {
  readonly messages: [string, Buffer][]
  readonly listener: (topic: string, payload: Buffer) => void
}

/**
 * A connection that keeps what arrives with the CONNACK. A persistent
 * session's queued inbox frames (tasks, messages assigned while the agent was
 * away) follow the CONNACK in the same read, and MQTT.js emits them (and
 * acknowledges them) before the connect resolves: with no listener yet they
 * were lost, a task until its lease ran out.
 */
async function connectHolding(options: BusClientOptions): Promise<{ client: MqttClient; held: Held }> {
  const messages: [string, Buffer][] = []
  const listener = (topic: string, payload: Buffer): void => void messages.push([topic, payload])
  const client = await connectBus(options, 'first-error', (c) => c.on('message', listener))
  return { client, held: { messages, listener } }
}

/** The options' login, else the environment's (set by the supervisor); none when neither names a user. */
function login(options: AgentOptions): { username?: string; password?: string } {
  const username = options.username ?? process.env[ENV.mqttUsername]
  if (username === undefined || username === '') return {}
  return { username, password: options.password ?? (options.username === undefined ? process.env[ENV.mqttPassword] : undefined) ?? '' }
}

export async function connectAgent(options: AgentOptions): Promise<Agent> {
  const topics = topicsFor(options.prefix)
  const url = options.url ?? process.env[ENV.mqttUrl] ?? 'mqtt://127.0.0.1:1883'
  const session = Date.now()
  const connectOptions: BusClientOptions = {
    url,
    clientId: clientIds.agent(topics.prefix, options.id),
    clean: false,
    reconnectPeriod: 1000,
    ...login(options),
    will: { topic: topics.instanceStatus(options.id), payload: Buffer.from(JSON.stringify({ state: 'offline', session })), qos: 1, retain: true },
  }
  // A broker that is not listening yet (the hub still starting) is waited for;
  // any other failure (bad credentials, a bad URL) is reported at once.
  const deadline = Date.now() + (options.waitForBusMs ?? 30_000)
  let connected: { client: MqttClient; held: Held }
  for (let attempt = 0; ; attempt++) {
    try {
      connected = await connectHolding(connectOptions)
      break
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ECONNREFUSED' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(500, 25 * 2 ** attempt)))
        continue
      }
      throw new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `${url}: ${(err as Error).message}`, { cause: err })
    }
  }
  const { client, held } = connected
  const agent = new AgentImpl(options, client, session, held)
  await agent.start()
  if (options.handleSignals !== false) drainOnSignals(agent)
  return agent
}
