/**
 * One `trinity mcp` instance: what its tools do, over the durable inbox
 * (journal.ts), the bus (bus-session.ts) and the hub's HTTP API (hub-api.ts).
 * The MCP server (server.ts) only translates between these calls and tools.
 *
 * Leases. A task is the agent's only after trinity_claim (`started`). From
 * then on a keep-alive renews its lease (`progress` without output, which
 * renews and changes nothing else) every third of the lease, for as long as
 * the MCP session that claimed it lives; when that session or the process
 * goes away the renewals stop, the lease runs out, and the hub retries the
 * task. Before a claim or a report the hub is asked whether this instance's
 * lease is still the current one (GET /tasks/:id): the hub ignores a stale
 * report silently, so without asking, the agent would be told its work was
 * reported when nobody took it.
 */
import type { Priority } from '../contract/constants.js'
import { TERMINAL_TASK_STATES } from '../contract/constants.js'
import type { TaskDetail } from '../contract/http.js'
import type { Message } from '../contract/payloads/message.js'
import type { Report, TaskEvent } from '../contract/payloads/task.js'
import { TrinityError } from '../errors.js'
import type { BusSession } from './bus-session.js'
import type { HubApi } from './hub-api.js'
import type { Journal, JournalEntry, JournalTask } from './journal.js'

/** An unread entry as trinity_inbox returns it. */
export type InboxItem =
  | { kind: 'task'; taskId: string; type: string; priority: Priority; attempt: number; content: unknown; leaseMs: number; receivedAt: number; cancelled: boolean }
  | { kind: 'message'; id: string; from: string; to: string; message: string; ts: number; replyTo?: string; receivedAt: number }
  | { kind: 'cancel'; taskId: string; receivedAt: number }
  | { kind: string; receivedAt: number; frame: unknown }

export interface SubmitResult {
  readonly id: string
  readonly state: string
  readonly assigned: readonly string[]
  readonly result?: unknown
  readonly error?: string
  /** wait: true and the task was not finished within the timeout. */
  readonly timedOut?: true
}

type Finished = 'completed' | 'failed'

export class McpInstance {
  /** Claimed tasks being kept alive: task id → the session that claimed it and its timer. */
  private readonly keepAlive = new Map<string, { owner: string; leaseToken: string; timer: NodeJS.Timeout }>()
  private readonly arrivalListeners = new Set<(entry: JournalEntry) => void>()

  constructor(
    readonly id: string,
    private readonly journal: Journal,
    private readonly bus: BusSession,
    private readonly hub: HubApi,
  ) {}

  /** Called by the bus session for every new frame. */
  arrived(entry: JournalEntry): void {
    const { frame } = entry
    if (frame.kind === 'cancel') this.stopKeepAlive(frame.taskId)
    // The hub gave the task again under a new lease: the old one is gone, and so is its claim.
    if (frame.kind === 'task' && (this.keepAlive.get(frame.task.id)?.leaseToken ?? frame.leaseToken) !== frame.leaseToken) this.stopKeepAlive(frame.task.id)
    for (const listener of this.arrivalListeners) listener(entry)
  }

  onArrival(listener: (entry: JournalEntry) => void): () => void {
    this.arrivalListeners.add(listener)
    return () => this.arrivalListeners.delete(listener)
  }

  get inFlight(): number {
    return this.keepAlive.size
  }

  /** Unread entries, oldest first, without marking them read (the `trinity://inbox` resource). */
  peek(): InboxItem[] {
    return this.journal.unread().map((e) => this.item(e))
  }

  unreadEntries(): JournalEntry[] {
    return this.journal.unread()
  }

  /** trinity_inbox: unread entries, oldest first; they count as read once returned. */
  inbox(): InboxItem[] {
    const entries = this.journal.unread()
    this.journal.markRead(entries.map((e) => e.seq))
    return entries.map((e) => this.item(e))
  }

  /** trinity_claim: `started`, then the keep-alive, owned by the MCP session `owner`. */
  async claim(taskId: string, owner: string): Promise<{ taskId: string; type: string; attempt: number; content: unknown; leaseMs: number }> {
    const task = this.known(taskId)
    await this.current(task)
    await this.bus.report({ taskId, state: 'started', leaseToken: task.frame.leaseToken })
    this.journal.claim(task.seq)
    this.startKeepAlive(task, owner)
    const { frame } = task
    return { taskId, type: frame.task.type, attempt: frame.attempt, content: frame.task.content, leaseMs: frame.leaseMs }
  }

  /** trinity_report: refused for an unknown, unclaimed, cancelled or stale task; the lease token is filled in. */
  async report(taskId: string, report: { state: 'progress' | Finished; output?: unknown; error?: string; retryable?: boolean }, owner: string): Promise<{ taskId: string; state: string }> {
    const task = this.known(taskId)
    if (!task.claimed) throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `task ${taskId} is not claimed: call trinity_claim first`)
    await this.current(task)
    const wire: Report = {
      taskId, state: report.state, leaseToken: task.frame.leaseToken,
      ...(report.output === undefined ? {} : { output: report.output }),
      ...(report.state === 'failed' ? { error: report.error ?? 'failed' } : {}),
      ...(report.state === 'failed' && report.retryable === false ? { retryable: false } : {}),
    }
    if (report.state === 'completed' && wire.output === undefined) wire.output = null
    await this.bus.report(wire)
    if (report.state === 'progress') {
      // A report from a new session (after a restart) adopts the claim.
      if (this.keepAlive.get(taskId)?.owner !== owner) this.startKeepAlive(task, owner)
    } else {
      this.stopKeepAlive(taskId)
      this.journal.close(task.seq, 'finished')
    }
    return { taskId, state: report.state }
  }

  /** The MCP session went away: its claims are no longer kept alive (the hub's lease expiry retries them). */
  releaseOwner(owner: string): void {
    for (const [taskId, entry] of this.keepAlive) if (entry.owner === owner) this.stopKeepAlive(taskId)
  }

  send(to: string, message: string, replyTo?: string): Promise<Message> {
    return this.bus.send(to, message, replyTo)
  }

  /**
   * trinity_submit over POST /task. With `waitMs`, subscribes to the task's
   * events first (with an id chosen here, so the subscription exists before
   * the task does) and returns at the terminal event or the timeout.
   */
  async submit(task: { type: string; content: unknown; priority?: Priority; id?: string }, waitMs?: number): Promise<SubmitResult> {
    if (waitMs === undefined) {
      const admitted = await this.hub.submit(task)
      return { id: admitted.id, state: admitted.state, assigned: admitted.assigned }
    }
    const id = task.id ?? `mcp-${this.id}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
    const watch = this.bus.watchTask(id, waitMs)
    let admitted: Awaited<ReturnType<HubApi['submit']>>
    try {
      await watch.ready
      admitted = await this.hub.submit({ ...task, id })
    } catch (err) {
      watch.cancel()
      throw err
    }
    // A repeated id may name a task that finished before the subscription.
    if (TERMINAL_TASK_STATES.has(admitted.state)) {
      watch.cancel()
      return outcome(admitted.task, admitted.assigned)
    }
    const event: TaskEvent | undefined = await watch.terminal
    if (event !== undefined) return outcome(event, admitted.assigned)
    const now = await this.hub.task(id)
    return TERMINAL_TASK_STATES.has(now.state) ? outcome(now, admitted.assigned) : { id, state: now.state, assigned: admitted.assigned, timedOut: true }
  }

  async status(): Promise<unknown> {
    const [summary, { instances }] = await Promise.all([this.hub.summary(), this.hub.instances()])
    return {
      hub: { version: summary.version, broker: summary.broker, uptimeSeconds: summary.uptimeSeconds },
      queue: summary.tasks,
      instances: instances.map((i) => ({ id: i.id, role: i.role, state: i.state, capabilities: i.capabilities, inFlight: i.inFlight, concurrency: i.concurrency, reason: i.reason })),
      self: { id: this.id, busConnected: this.bus.connected, unread: this.journal.unread().length, claimed: [...this.keepAlive.keys()] },
    }
  }

  messages(filter: { limit?: number | undefined; from?: string | undefined; to?: string | undefined }): Promise<{ messages: Message[] }> {
    return this.hub.messages(filter)
  }

  stop(): void {
    for (const taskId of [...this.keepAlive.keys()]) this.stopKeepAlive(taskId)
  }

  private known(taskId: string): JournalTask {
    const task = this.journal.task(taskId)
    if (task === undefined) throw new TrinityError('TRINITY_ERR_TASK_NOT_FOUND', `no task ${taskId} was assigned to ${this.id}`)
    if (task.cancelled) throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `task ${taskId} was cancelled by the hub`)
    if (task.closed) throw new TrinityError('TRINITY_ERR_LEASE_STALE', `task ${taskId}: this instance's lease is no longer current (already reported, or taken back by the hub)`)
    return task
  }

  /** Asks the hub whether this instance's lease on the task is still the current one. */
  private async current(task: JournalTask): Promise<TaskDetail> {
    const { id } = task.frame.task
    const record = await this.hub.task(id)
    if (record.state === 'cancelled') {
      this.stopKeepAlive(id)
      throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `task ${id} was cancelled`)
    }
    const mine = record.assignments.some((leg) => leg.instance === this.id && leg.leaseToken === task.frame.leaseToken && (leg.state === 'assigned' || leg.state === 'running'))
    if (!mine) {
      this.stopKeepAlive(id)
      this.journal.close(task.seq, 'stale')
      const holder = record.assignments.find((leg) => leg.state === 'assigned' || leg.state === 'running')?.instance
      throw new TrinityError('TRINITY_ERR_LEASE_STALE', `task ${id} (attempt ${task.frame.attempt}): this instance's lease is no longer current; the task is ${record.state}${holder == null ? '' : ` on ${holder}`}`)
    }
    return record
  }

  private startKeepAlive(task: JournalTask, owner: string): void {
    const { id } = task.frame.task
    this.stopKeepAlive(id)
    const timer = setInterval(() => {
      this.bus.report({ taskId: id, state: 'progress', leaseToken: task.frame.leaseToken }).catch(() => undefined)
    }, Math.max(1, Math.floor(task.frame.leaseMs / 3)))
    timer.unref()
    this.keepAlive.set(id, { owner, leaseToken: task.frame.leaseToken, timer })
  }

  private stopKeepAlive(taskId: string): void {
    const entry = this.keepAlive.get(taskId)
    if (entry === undefined) return
    clearInterval(entry.timer)
    this.keepAlive.delete(taskId)
  }

  private item(entry: JournalEntry): InboxItem {
    const { frame, receivedAt } = entry
    switch (frame.kind) {
      case 'task':
        return {
          kind: 'task', taskId: frame.task.id, type: frame.task.type, priority: frame.task.priority, attempt: frame.attempt,
          content: frame.task.content, leaseMs: frame.leaseMs, receivedAt, cancelled: this.journal.task(frame.task.id)?.cancelled ?? false,
        }
      case 'message':
        return { kind: 'message', ...frame.message, receivedAt }
      case 'cancel':
        return { kind: 'cancel', taskId: frame.taskId, receivedAt }
      default: {
        const other: { kind: string } = frame
        return { kind: other.kind, receivedAt, frame: other }
      }
    }
  }
}

function outcome(task: { id: string; state: string; result?: unknown; error?: string }, assigned: readonly string[]): SubmitResult {
  return {
    id: task.id, state: task.state, assigned,
    ...(task.result === undefined ? {} : { result: task.result }),
    ...(task.error === undefined ? {} : { error: task.error }),
  }
}
