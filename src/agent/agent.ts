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
 * A handler can ask a person (`ctx.ask`): a `needs_input` report, answered
 * by an `input` frame for the same task and lease token.
 */
import type { MqttClient } from 'mqtt'
import { randomUUID } from 'node:crypto'
import type { Priority } from '../contract/constants.js'
import { Report } from '../contract/payloads/task.js'
import { validate } from '../contract/payloads/validate.js'
import type { InboxFrame } from '../contract/payloads/inbox.js'
import { decodeInboxFrame } from '../contract/payloads/inbox-decode.js'
import { DEFAULT_CONCURRENCY } from '../contract/payloads/instance.js'
import type { Message } from '../contract/payloads/message.js'
import { topicsFor, type TopicContract } from '../contract/topics.js'
import { TrinityError } from '../errors.js'
import { connectInstance, isOwnWill } from '../net/instance-connection.js'
import { drainOnSignals, forgetOnSignals } from './signals.js'

/** Thrown by a handler when trying again cannot help (bad input, say): the hub fails the task at once instead of retrying it. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError'
}

export interface AgentOptions {
  id: string
  /**
   * Default: $TRINITY_MQTT_URL or mqtt://127.0.0.1:1883. The nodes of a
   * clustered broker (NATS) as one comma-separated list: each reconnect tries
   * the next, so the agent survives the loss of the node it is on.
   */
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
  /**
   * Asks a person and waits for the answer (any JSON: the dashboards and
   * `trinity answer` send text, `--json` or the API anything). The task shows
   * `needs_input` meanwhile and its lease does not run; `tasks.inputTimeout`
   * bounds the wait on the hub. Rejects when the hub cancels the task (or the
   * agent drains): `signal` is aborted then too. One question at a time.
   */
  ask(question: string, options?: { choices?: readonly string[] }): Promise<unknown>
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
  private readonly active = new Map<string, { controller: AbortController; done: Promise<void>; leaseToken: string }>()
  /** Questions waiting for their `input` frame, by task id; the lease token says which attempt asked. */
  private readonly asks = new Map<string, { leaseToken: string; resolve: (answer: unknown) => void }>()
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
      // A person may take hours: a task waiting for an answer is given back (the hub retries it once we are offline), not waited for.
      for (const taskId of this.asks.keys()) {
        this.active.get(taskId)?.controller.abort(new TrinityError('TRINITY_ERR_TASK_CONFLICT', `${this.id} is draining: task ${taskId} was waiting for input and goes back to the hub`))
      }
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
    if (isOwnWill(payload, this.session) && this.client.connected && this.draining === undefined) {
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
        this.cancelAttempt(frame.taskId, frame.leaseToken, 'cancelled by the hub')
        return
      case 'input': {
        // Only the attempt that asked: an answer for an earlier attempt's question is not this one's.
        const pending = this.asks.get(frame.taskId)
        if (pending?.leaseToken === frame.leaseToken) pending.resolve(frame.answer)
        return
      }
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

  /** Aborts the attempt the hub names (by its lease token): a cancel for an earlier attempt is not this one's. */
  private cancelAttempt(taskId: string, leaseToken: string, why: string): void {
    const current = this.active.get(taskId)
    if (current?.leaseToken === leaseToken) current.controller.abort(new TrinityError('TRINITY_ERR_TASK_CONFLICT', why))
  }

  /** `ctx.ask`: the needs_input report, then the `input` frame's answer, or the abort's reason. */
  private ask(base: AskBase, signal: AbortSignal, question: string, choices: readonly string[] | undefined): Promise<unknown> {
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    if (this.asks.has(base.taskId)) return Promise.reject(new TrinityError('TRINITY_ERR_TASK_CONFLICT', `task ${base.taskId} is already waiting for an answer`))
    const report: Report = { ...base, state: 'needs_input', question, ...(choices === undefined ? {} : { choices: [...choices] }) }
    // Checked here: the hub would refuse it on hub/errors, and this promise would wait for an answer that never comes.
    const checked = validate(Report, report)
    if (!checked.ok) return Promise.reject(new TrinityError('TRINITY_ERR_BAD_REQUEST', `ask: ${checked.reason}`))
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.asks.delete(base.taskId)
        reject(signal.reason as Error)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.asks.set(base.taskId, {
        leaseToken: base.leaseToken,
        resolve: (answer) => {
          signal.removeEventListener('abort', onAbort)
          this.asks.delete(base.taskId)
          resolve(answer)
        },
      })
      this.report(report)
    })
  }

  private accept(frame: TaskFrame): void {
    if (this.draining !== undefined) return
    const current = this.active.get(frame.task.id)
    if (current !== undefined) {
      if (current.leaseToken === frame.leaseToken) return // a redelivery of the attempt that runs
      // A new attempt of a task an older one still holds (the hub moved on: a wait for input ran out, say): that one is stale.
      current.controller.abort(new TrinityError('TRINITY_ERR_TASK_CONFLICT', `superseded by attempt ${frame.attempt}`))
      void current.done.then(() => this.accept(frame))
      return
    }
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
      ask: (question, options = {}) => this.ask(base, controller.signal, question, options.choices),
    }
    // In the map before the handler runs: a handler that fails at once must not leave it behind.
    const entry = { controller, done: Promise.resolve(), leaseToken }
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
        if (this.active.get(task.id) === entry) this.active.delete(task.id)
        const next = this.waiting.shift()
        if (next !== undefined && this.draining === undefined) this.run(next)
      }
    })()
  }
}

/** What a question is asked for: the task and the attempt (its lease token). */
interface AskBase { readonly taskId: string; readonly leaseToken: string }

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
async function connectHolding(options: AgentOptions, session: number): Promise<{ client: MqttClient; held: Held }> {
  const messages: [string, Buffer][] = []
  const listener = (topic: string, payload: Buffer): void => void messages.push([topic, payload])
  const client = await connectInstance(options, session, (c) => c.on('message', listener))
  return { client, held: { messages, listener } }
}


export async function connectAgent(options: AgentOptions): Promise<Agent> {
  const session = Date.now()
  const { client, held } = await connectHolding(options, session)
  const agent = new AgentImpl(options, client, session, held)
  await agent.start()
  if (options.handleSignals !== false) drainOnSignals(agent)
  return agent
}
