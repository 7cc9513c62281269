/**
 * The coordinator: its side of the bus plus the durable store.
 *
 * On an external broker it is an ordinary bus client (persistent session,
 * QoS 1); on the embedded one it reads and publishes in-process (hub-bus.ts),
 * with the same guarantees. Incoming messages go
 * through one dispatch table keyed on the parsed topic (bus-handlers.ts);
 * this file wires the parts together, runs their timers, and publishes. Bad
 * input is rejected with a reason on `{prefix}/hub/errors`; nothing a client
 * sends can crash the hub.
 */
import { randomUUID } from 'node:crypto'
import type { TaskState } from '../contract/constants.js'
import type { TaskRecord, TaskSubmit } from '../contract/payloads/task.js'
import type { InboxFrame } from '../contract/payloads/inbox.js'
import { DEFAULT_CONCURRENCY, type Health } from '../contract/payloads/instance.js'
import { BROADCAST, type Message } from '../contract/payloads/message.js'
import type { ComputerSend } from '../contract/payloads/bridge.js'
import type { HubError, HubStats } from '../contract/payloads/hub.js'
import type { SupervisorCommand, SupervisorStatus } from '../contract/payloads/supervisor.js'
import { topicsFor, type TopicContract } from '../contract/topics.js'
import type { Config } from '../config/schema.js'
import { TrinityError, type ErrorCode } from '../errors.js'
import type { Logger } from '../log.js'
import { unsupportedId } from './broker-ids.js'
import { BusDispatcher, subscriptionsFor } from './bus-handlers.js'
import { HealthMonitor } from './health.js'
import { HttpAdapter } from './http-adapter.js'
import { ExecAdapter, execCommandOf, type ExecCommand } from './exec-adapter.js'
import { unknownRecipient } from './recipients.js'
import { Registry, type InstanceView } from './registry.js'
import { Router, unmatchedRoutes } from './router.js'
import { Scheduler } from './scheduler.js'
import type { TaskStore } from './task-store.js'
import type { HubBus } from './hub-bus.js'
import { DurableGate } from './durable-gate.js'

export class Coordinator {
  readonly topics: TopicContract
  readonly registry: Registry
  readonly scheduler: Scheduler
  readonly health: HealthMonitor
  private readonly router: Router
  private readonly httpAdapter: HttpAdapter
  private readonly execAdapter: ExecAdapter
  /** The configured `adapter: exec` instances' commands, by instance id. */
  private readonly execCommands = new Map<string, ExecCommand>()
  private readonly dispatcher: BusDispatcher
  /** What says "stored" (acknowledgements, events, inbox frames) leaves once the store vouches for it. */
  private readonly gate: DurableGate
  private storeLostBy: ((reason: Error) => void) | undefined
  /** Settles when the store can no longer vouch for writes (a replicated store fenced by a newer leader): this hub must step down. */
  readonly storeLost: Promise<Error>
  private readonly timers: NodeJS.Timeout[] = []
  private lastStats = ''
  rejected = 0
  /** Ids of messages this hub published itself: their echo from the bus is not news (and may be trimmed already). */
  private readonly ownMessages = new Set<string>()
  /** The last retained supervisor status, if a supervisor runs this hub. */
  private supervisor: SupervisorStatus | undefined
  readonly startedAt = Date.now()
  /** The birth last written per instance (rememberBirth). */
  private readonly remembered = new Map<string, string>()

  constructor(
    private readonly config: Config,
    private readonly bus: HubBus,
    private readonly log: Logger,
    /** Opened by the hub before the broker listens; closed by stop(). */
    readonly store: TaskStore,
  ) {
    this.topics = topicsFor(config.hub.topicPrefix)
    this.storeLost = new Promise((resolve) => { this.storeLostBy = resolve })
    this.gate = new DurableGate(store, log, (reason) => {
      log.error({ err: reason }, 'the task store can no longer vouch for writes: nothing more is acknowledged by this hub')
      this.storeLostBy?.(reason)
    })
    this.registry = new Registry(config.instances, DEFAULT_CONCURRENCY, config.limits.maxJoinedInstances)
    const now = Date.now
    const router = new Router(this.registry, config.routes, config.tasks.fallback)
    this.router = router
    this.scheduler = new Scheduler({
      store: this.store, registry: this.registry, router, tasks: config.tasks, log, now,
      sendToInbox: (id, frame) => this.sendToInbox(id, frame),
      publishEvent: (taskId, json) => this.publishRaw(this.topics.taskEvent(taskId), json, { qos: 0 }),
      // A batched submission (in-process bus) refused at its commit: said as a refused handler would.
      refusedLater: (_taskId, error) => this.reject(this.topics.taskSubmit, error.code, error.message),
    })
    this.httpAdapter = new HttpAdapter({
      timeoutMs: config.tasks.leaseMs, maxDepth: config.limits.maxDepth, log,
      report: (id, report) => {
        const outcome = this.scheduler.report(id, report)
        if (outcome !== 'applied') log.info({ instance: id, taskId: report.taskId, outcome }, 'http adapter report not applied')
      },
    })
    for (const instance of config.instances) {
      const command = execCommandOf(instance)
      if (command !== null) this.execCommands.set(instance.id, command)
    }
    this.execAdapter = new ExecAdapter({
      maxPayload: config.limits.maxPayload, maxDepth: config.limits.maxDepth, log,
      report: (id, report) => {
        const outcome = this.scheduler.report(id, report)
        if (outcome !== 'applied') log.info({ instance: id, taskId: report.taskId, outcome }, 'exec adapter report not applied')
        return outcome === 'applied'
      },
    })
    this.health = new HealthMonitor({
      registry: this.registry, health: config.health, log, now,
      ping: (id, nonce) => this.sendToInbox(id, { kind: 'ping', nonce, ts: Date.now() }),
      publishHealth: (id, health) => this.publish(this.topics.health(id), health, { qos: 0, retain: true }),
      onStateChange: (instance, _from, to) => {
        if (to === 'offline') this.scheduler.instanceLost(instance.id, 'health check: offline')
        else if (to === 'online' || to === 'degraded') this.scheduler.dispatch()
      },
    })
    this.dispatcher = new BusDispatcher({
      scheduler: this.scheduler, registry: this.registry, health: this.health, log,
      reject: (topic, code, reason) => this.reject(topic, code, reason),
      topics: this.topics,
      maxDepth: config.limits.maxDepth,
      brokerFlavor: config.broker.flavor,
      publishHealth: (id, health) => this.publish(this.topics.health(id), health, { qos: 0, retain: true }),
      rememberBirth: (id) => this.rememberBirth(id),
      isOwnEcho: (id) => this.ownMessages.delete(id),
      unknownRecipient: (to) => this.unknownRecipient(to),
      acceptMessage: (message) => { this.acceptMessage(message) },
      supervisorStatus: (status) => { this.supervisor = status },
    }, config.limits.maxPayload)
  }

  get connected(): boolean {
    return this.bus.connected
  }

  async start(): Promise<void> {
    this.warnUnmatchedRoutes()
    // Before the tasks: a leg assigned to a joined instance finds it in the registry again.
    this.registry.restore(this.store.births(), Date.now())
    const restored = this.scheduler.restore()
    if (restored > 0) this.log.info({ tasks: restored }, 'task queue restored from disk')
    await this.bus.start(subscriptionsFor(this.topics), (topic, payload, ack) => {
      // In-process, a turn's messages share one commit and are released after it. Over MQTT.js each is
      // written at once and its PUBACK released once the store vouches for it, the next read meanwhile.
      if (this.bus.batches) this.scheduler.batch(() => this.onMessage(topic, payload), () => this.gate.run(ack))
      else {
        this.onMessage(topic, payload)
        this.gate.run(ack)
      }
    })
    this.publishHostedHealth()
    this.health.start()
    const sweepMs = Math.min(1000, Math.max(50, Math.floor(this.config.tasks.leaseMs / 10)))
    this.every(sweepMs, () => this.scheduler.sweepLeases())
    this.every(this.config.hub.statsIntervalMs, () => this.publishStats())
    this.every(60_000, () => this.prune())
    const forgetAfter = this.config.health.forgetAfterMs
    if (forgetAfter !== null) this.every(Math.min(60_000, Math.max(250, Math.floor(forgetAfter / 4))), () => this.expireJoined(forgetAfter))
    this.scheduler.dispatch()
    this.publishStats()
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer)
    this.health.stop()
    this.httpAdapter.stop()
    await this.execAdapter.stop()
    this.scheduler.close()
    await this.bus.close()
    await this.store.close()
  }

  // --- the API the HTTP routes and the CLI use -------------------------------

  submit(request: TaskSubmit): { task: TaskRecord; created: boolean } {
    const unsupported = request.id === undefined ? null : unsupportedId(this.config.broker.flavor, 'id', request.id)
    if (unsupported !== null) throw unsupported
    return this.scheduler.submit(request)
  }

  /** Logs a message (deduped by id) and delivers it to the addressed inboxes. */
  acceptMessage(message: Message): boolean {
    if (!this.store.saveMessage(message, this.config.messages.maxCount)) return false
    const recipients = message.to === BROADCAST ? this.registry.all().map((i) => i.id).filter((id) => id !== message.from) : [message.to]
    for (const id of recipients) if (this.registry.get(id) !== undefined) this.sendToInbox(id, { kind: 'message', message })
    return true
  }

  send(from: string, to: string, text: string): Message {
    // Both are levels of the topic the message is published on.
    for (const [field, id] of [['from', from], ['to', to]] as const) {
      const unsupported = unsupportedId(this.config.broker.flavor, field, id)
      if (unsupported !== null) throw unsupported
    }
    const unknown = this.unknownRecipient(to)
    if (unknown !== null) throw new TrinityError('TRINITY_ERR_RECIPIENT_UNKNOWN', unknown, { field: 'to' })
    const message: Message = { id: randomUUID(), from, to, message: text, ts: Date.now() }
    this.acceptMessage(message)
    this.ownMessages.add(message.id)
    if (this.ownMessages.size > 10_000) this.ownMessages.delete(this.ownMessages.values().next().value as string)
    this.publish(this.topics.message(from, to), message, { qos: 1 })
    return message
  }

  /**
   * Asks the supervisor to restart an instance (clearing a crash loop). The
   * supervisor is another process; the request goes over the bus.
   */
  restartInstance(id: string, requestedBy: string): { id: string; action: 'restart'; process: InstanceView['process'] } {
    const instance = this.registry.get(id)
    if (instance === undefined) throw new TrinityError('TRINITY_ERR_INSTANCE_NOT_FOUND', id)
    if (this.supervisor?.state !== 'running') throw new TrinityError('TRINITY_ERR_NOT_SUPERVISED', 'no supervisor is running; start with `trinity start`')
    if (instance.adapter === 'exec') throw new TrinityError('TRINITY_ERR_NOT_SUPERVISED', `${id} is run by the hub once per task (adapter: exec); there is no process to restart`)
    if (instance.process === null) throw new TrinityError('TRINITY_ERR_NOT_SUPERVISED', `${id} has no command in the config`)
    const command: SupervisorCommand = { action: 'restart', target: id, requestedBy }
    this.publish(this.topics.supervisorCommand, command, { qos: 1 })
    return { id, action: 'restart', process: instance.process }
  }

  /**
   * Why `to` cannot receive a message, or null when it can (recipients.ts):
   * a known instance, `all`, one of `sync.peers`, or a sender in the log.
   */
  unknownRecipient(to: string): string | null {
    return unknownRecipient(to, this.registry, this.config.sync.peers, (id) => this.store.recentMessages(1, { from: id }).length > 0)
  }

  /** True when `to` names a remote computer (one of `sync.peers`): POST /send hands it to the git bridge. */
  isRemoteComputer(to: string): boolean {
    return this.config.sync.peers.includes(to)
  }

  /** A message for a remote computer: published on `computer/{to}/send`, where the git bridge picks it up. */
  sendToComputer(from: string, to: string, text: string, instance?: string): ComputerSend & { id: string; to: string; ts: number } {
    const send = { id: randomUUID(), from, message: text, ...(instance === undefined ? {} : { instance }) } satisfies ComputerSend
    this.publish(this.topics.computerSend(to), send, { qos: 1 })
    return { ...send, to, ts: Date.now() }
  }

  /** POST /sync: ask the git bridge for a round now. */
  requestSync(reason: string): void {
    if (!this.config.sync.enabled) throw new TrinityError('TRINITY_ERR_SYNC_DISABLED', 'set sync.enabled: true in the config')
    this.publish(this.topics.bridgeSync, { reason, at: Date.now() }, { qos: 1 })
  }

  instances(): InstanceView[] {
    return this.registry.all().map((i) => i.view())
  }

  /**
   * DELETE /instances/:id: a joined instance leaves the registry, and its
   * retained status and health are cleared so a hub restart does not bring it
   * back. A live one that publishes a new birth joins again.
   */
  forgetInstance(id: string): { id: string; forgotten: true } {
    const instance = this.registry.get(id)
    if (instance === undefined) throw new TrinityError('TRINITY_ERR_INSTANCE_NOT_FOUND', id)
    if (instance.source === 'config') throw new TrinityError('TRINITY_ERR_INSTANCE_CONFIGURED', `${id} is in ${this.config.source}; remove it there`)
    if (instance.inFlight.size > 0) throw new TrinityError('TRINITY_ERR_INSTANCE_BUSY', `${id} holds ${instance.inFlight.size} task leg(s); cancel them or wait for them to finish`)
    this.forget(id, 'DELETE /instances/:id')
    return { id, forgotten: true }
  }

  /**
   * Why an unfinished task is not moving, in words (GET /tasks/:id `waiting`,
   * `trinity submit --wait` on timeout); null when it is finished or running.
   */
  waiting(task: TaskRecord): string | null {
    return this.router.waiting(task, Date.now())
  }

  stats(): HubStats {
    const all = this.registry.all()
    const count = (state: string): number => all.filter((i) => i.state === state).length
    // `timeout` (a missed check, not yet offline) is counted apart, as the dashboard shows it: yellow, not red.
    const up = count('online') + count('degraded') + count('timeout')
    return {
      instances: { total: all.length, online: count('online'), degraded: count('degraded'), timeout: count('timeout'), offline: all.length - up },
      healthChecks: this.health.checks,
      messages: this.store.messageCount(),
      tasks: this.scheduler.counts(),
      rejected: this.rejected,
      at: Date.now(),
    }
  }

  taskCounts(): Record<TaskState, number> {
    return this.scheduler.counts()
  }

  // --- the bus -----------------------------------------------------------------

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = this.topics.parse(topic)
    if (parsed === undefined) this.dispatcher.refuseTopic(topic)
    else this.dispatcher.dispatch(parsed, payload, topic)
  }

  /** `code` is what a program matches on; `reason` says it in words (and keeps its old text). */
  private reject(topic: string, code: ErrorCode, reason: string): void {
    this.rejected++
    this.log.warn({ topic, code, reason }, 'rejected a payload')
    const error: HubError = { topic, code, reason, at: Date.now() }
    this.publish(this.topics.hubErrors, error, { qos: 0 })
  }

  private sendToInbox(instanceId: string, frame: InboxFrame): void {
    const httpUrl = this.registry.get(instanceId)?.httpUrl ?? null
    if (httpUrl !== null) this.gate.run(() => this.httpAdapter.deliver(instanceId, httpUrl, frame))
    const command = this.execCommands.get(instanceId)
    if (command !== undefined) this.gate.run(() => this.execAdapter.deliver(instanceId, command, frame))
    // Published either way: the inbox is also how observers see assignments.
    this.publish(this.topics.instanceInbox(instanceId), frame, { qos: frame.kind === 'ping' ? 0 : 1 })
  }

  private publish(topic: string, payload: unknown, options: { qos: 0 | 1; retain?: boolean }): void {
    this.publishRaw(topic, JSON.stringify(payload), options)
  }

  private publishRaw(topic: string, json: string, options: { qos: 0 | 1; retain?: boolean }): void {
    this.gate.run(() => this.bus.publish(topic, json, { qos: options.qos, retain: options.retain ?? false }))
  }

  /**
   * undefined when every change so far is durable (always, on SQLite); else a promise for that moment,
   * rejected when the store cannot vouch. The HTTP API answers a write only after it (http.ts).
   */
  settled(): Promise<void> | undefined {
    return this.gate.settled()
  }

  /** The exec instances' health, once: the hub runs them, so they are online while it is (health.ts probes them not). */
  private publishHostedHealth(): void {
    for (const id of this.execCommands.keys()) {
      const health: Health = { state: 'online', responseMs: null, checkedAt: Date.now() }
      this.publish(this.topics.health(id), health, { qos: 0, retain: true })
    }
  }

  private publishStats(): void {
    const stats = this.stats()
    // Published only when something but the timestamp changed.
    const { at: _at, ...rest } = stats
    const key = JSON.stringify(rest)
    if (key === this.lastStats) return
    this.lastStats = key
    this.publish(this.topics.hubStats, stats, { qos: 0, retain: true })
  }

  /** Logged once per route at start: tasks of these types wait until someone with that id, role or capability joins. */
  private warnUnmatchedRoutes(): void {
    const { routes, tasks, instances, source } = this.config
    if (instances.length === 0) this.log.warn({ config: source }, 'no instances configured: tasks wait for instances that join by birth')
    for (const { route, targets } of unmatchedRoutes(routes, tasks.fallback, instances)) {
      this.log.warn({ route, targets }, `route ${route}: target ${targets.map((t) => `"${t}"`).join(', ')} matches no configured instance (id, role or capability); its tasks wait until one joins`)
    }
  }

  private expireJoined(afterMs: number): void {
    for (const instance of this.registry.expired(Date.now(), afterMs)) this.forget(instance.id, `offline and silent for more than ${afterMs} ms (health.forgetAfter)`)
  }

  /** Written when the session or the profile changed: an agent births again on every handle() and reconnect. */
  private rememberBirth(id: string): void {
    const instance = this.registry.get(id)
    if (instance === undefined || instance.session === null) return
    const profile = { capabilities: instance.capabilities, role: instance.role, name: instance.name, concurrency: instance.concurrency, ...(instance.port === null ? {} : { port: instance.port }) }
    const key = JSON.stringify([instance.session, profile])
    if (this.remembered.get(id) === key) return
    try {
      this.store.saveBirth({ id, session: instance.session, profile })
      this.remembered.set(id, key)
    } catch (err) {
      // Only the next start's knowledge of this session is lost; the status itself is applied.
      this.log.warn({ instance: id, err: (err as Error).message }, 'could not keep the instance\'s birth for the next start')
    }
  }

  private forget(id: string, reason: string): void {
    this.registry.forget(id)
    this.remembered.delete(id)
    try { this.store.forgetBirth(id) } catch (err) { this.log.warn({ instance: id, err: (err as Error).message }, 'could not forget the instance\'s birth') }
    // Empty retained payloads clear the broker's copies (MQTT-3.3.1-6); the status handler ignores them.
    this.publishRaw(this.topics.instanceStatus(id), '', { qos: 1, retain: true })
    this.publishRaw(this.topics.health(id), '', { qos: 0, retain: true })
    this.log.info({ instance: id, reason }, 'forgot a joined instance')
  }

  private prune(): void {
    this.store.pruneMessages(this.config.messages.maxCount, this.config.messages.maxAgeMs, Date.now())
    this.store.pruneFinished(this.config.tasks.keepFinished)
  }

  private every(ms: number, fn: () => void): void {
    const timer = setInterval(() => {
      try { fn() } catch (err) { this.log.error({ err }, 'periodic job failed') }
    }, ms)
    timer.unref()
    this.timers.push(timer)
  }
}
