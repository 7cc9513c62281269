/**
 * The durable task queue: admission, priority dispatch, leases, retries.
 *
 * Every change is written to the store before anything is published, so what
 * observers and instances see always survives a kill -9. Dispatch order is
 * critical > high > normal > low, FIFO within a level; nothing goes to an
 * instance that is not available. Each assignment carries a lease token; a
 * report that does not match the current assignment is ignored, so a late
 * report from an earlier attempt can never finish a task twice.
 *
 * One task cannot stop the others (issue #14): a task whose record cannot be
 * stored, or whose assignment or event cannot be sent, is a dead letter at
 * once (`deadLetter`, its legs `bury`), with the reason, and dispatch and the lease sweep go on.
 *
 * A full disk is not such a task: a change to an accepted task that finds no
 * room is kept in memory (`unwritten`) and written again each second and
 * before every other write; meanwhile nothing new is assigned and client
 * writes (submit, respond, cancel, retry) are refused with 507, and once the
 * disk has room the held changes go out (their events with them) and the
 * tasks carry on in the same run (issue #14). A client's own write that finds
 * no room is not held but undone and refused (507): its 2xx or PUBACK would
 * say it is on disk (`commitRequest`).
 */
import { randomUUID } from 'node:crypto'
import { PRIORITY_RANK, TASK_STATES, TERMINAL_TASK_STATES, type TaskState } from '../contract/constants.js'
import type { Assignment, Report, TaskRecord, TaskRespond, TaskSubmit, TaskSummary } from '../contract/payloads/task.js'
import type { InboxFrame } from '../contract/payloads/inbox.js'
import { contentFacts, taskEvent } from '../contract/task-summary.js'
import type { Config, Route } from '../config/schema.js'
import { TrinityError, isTrinityError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Registry } from './registry.js'
import type { Router } from './router.js'
import type { TaskStore } from './task-store.js'
import { answer, ask, assign, bury, cancel, complete, fail, inputDeadline, isLegActive, isLegFinished, lose, renew, replay, start, type RetryPolicy } from './leg-lifecycle.js'
import { deriveState, legKey, newTaskRecord, sameSubmission } from './task-record.js'
import { LegQueue, type QueuedLeg } from './leg-queue.js'
import { TaskJson } from './task-json.js'

export interface SchedulerDeps {
  store: TaskStore
  registry: Registry
  router: Router
  tasks: Config['tasks']
  log: Logger
  now: () => number
  /** QoS 1 to the instance inbox. */
  sendToInbox: (instanceId: string, frame: InboxFrame) => void
  /** A change, as the JSON of a TaskEvent: the summary, with the content on admission and the result at the end. */
  publishEvent: (taskId: string, json: string) => void
  /** A submission made in a batch (`batch`) that its commit refused (the disk was full): the caller had already returned. */
  refusedLater?: (taskId: string, error: TrinityError) => void
}

/** Frames of assignments made in `dispatch`, sent once the assignment is stored. */
interface AssignmentFrame { instanceId: string; frame: InboxFrame; task: TaskRecord; index: number; queued: Assignment }

/** `waiting`: the leg waits for a person's answer, and only the answer (or a cancel, or losing it) moves it on. */
export type ReportOutcome = 'applied' | 'stale' | 'unknown-task' | 'waiting'

export class Scheduler {
  /** Unfinished tasks; finished ones live only in the store. */
  private readonly live = new Map<string, TaskRecord>()
  /** Pending legs per priority rank (index = rank), FIFO. */
  private readonly queues: LegQueue[] = [new LegQueue(), new LegQueue(), new LegQueue(), new LegQueue()]
  private readonly queued = new Map<string, QueuedLeg>()
  /** Admitted but not yet written: saved with the dispatch that follows, in one commit; the admission event goes out after it. */
  private readonly admitted = new Map<string, string>()
  /** Accepted tasks whose latest change found the disk full: held here (their events too) until a write gets through. */
  private readonly unwritten = new Map<string, TaskRecord>()
  /** Set while the disk is full (the last write said so): the refusal, and the timer that retries `unwritten`. */
  private full: { error: TrinityError; retry: NodeJS.Timeout } | undefined
  /** Submissions, and client changes (`commitRequest`), whose first write found the disk full: refused, never acknowledged (the caller throws). */
  private readonly refused = new Map<string, TrinityError>()
  /** Each live task's summary, serialised once per change (the content's preview and size once per task). */
  private readonly json = new TaskJson()
  private wakeTimer: NodeJS.Timeout | undefined
  private wakeAt = Infinity
  /**
   * Group commit (issue #12). Inside `batch` (the embedded hub's in-process
   * deliveries), changes are staged and written in one commit at the end of
   * the event loop's turn, for every message of that turn: their
   * acknowledgements, events and inbox frames follow the commit. Any write
   * outside a batch (HTTP, timers, client changes) commits what is staged
   * with it, at once.
   */
  private batching = false
  private readonly staged = new Set<TaskRecord>()
  /** Each staged change's event, as it was then: observers see every change, not only where a turn ended. */
  private readonly stagedEvents: [string, string][] = []
  private readonly stagedFrames: AssignmentFrame[] = []
  /** Acknowledgements of batched messages, released by the commit that holds their changes. */
  private readonly afterCommit: (() => void)[] = []
  /** Submissions made in a batch: a refusal at their commit is said through `refusedLater`. */
  private readonly batchedSubmits = new Set<string>()
  private commitScheduled = false

  constructor(private readonly deps: SchedulerDeps) {}

  /**
   * Runs `fn` (one message's handling) with its task changes staged for the
   * turn's commit; `settle` (the message's acknowledgement) runs once they
   * are on disk, at once when it changed nothing and nothing is waiting.
   */
  /** A change in a batch: written at the turn's commit, its event as it is now published after it. */
  private stage(task: TaskRecord): void {
    this.staged.add(task)
    this.stagedEvents.push([task.id, this.json.event(task)])
  }

  batch(fn: () => void, settle: () => void): void {
    this.batching = true
    try {
      fn()
    } finally {
      this.batching = false
    }
    if (this.staged.size === 0 && this.admitted.size === 0 && this.afterCommit.length === 0) return settle()
    this.afterCommit.push(settle)
    if (!this.commitScheduled) {
      this.commitScheduled = true
      setImmediate(() => {
        this.commitScheduled = false
        // A write outside a batch may have committed it all already.
        if (this.staged.size === 0 && this.admitted.size === 0 && this.afterCommit.length === 0) return
        try {
          this.persist([])
        } catch (err) {
          this.deps.log.error({ err }, 'the batched commit failed')
          for (const ack of this.afterCommit.splice(0)) ack()
        }
      })
    }
  }

  /** Resumes the queue after a restart: unfinished tasks, leases as they were. */
  restore(): number {
    for (const task of this.deps.store.unfinishedTasks()) {
      this.live.set(task.id, task)
      task.assignments.forEach((leg, index) => {
        if (leg.state === 'queued') this.enqueue(task, index)
        else if (isLegActive(leg) && leg.instance !== null) this.deps.registry.get(leg.instance)?.inFlight.add(legKey(task.id, index))
      })
    }
    return this.live.size
  }

  submit(request: TaskSubmit): { task: TaskRecord; created: boolean } {
    const { router, tasks, now } = this.deps
    if (request.id !== undefined) {
      const existing = this.get(request.id)
      if (existing !== undefined) {
        if (!sameSubmission(existing, request)) throw new TrinityError('TRINITY_ERR_ID_CONFLICT', request.id, { field: 'id' })
        return { task: existing, created: false }
      }
    }
    this.mustBeWritable()
    const route = router.routeFor(request.type)
    const task = newTaskRecord(request, route, { priority: tasks.defaultPriority, maxAttempts: tasks.maxAttempts }, now())
    // Serialised before the task joins the queue (the content is the client's part): a record that cannot be written leaves nothing behind.
    // Its record and summary are serialised when written, as they are then: most tasks are assigned before that.
    const admitted = this.json.admission(task)
    this.live.set(task.id, task)
    task.assignments.forEach((_, index) => this.enqueue(task, index))
    // One commit for admission and assignment; the `queued` event still goes out first.
    this.admitted.set(task.id, admitted)
    if (this.batching) this.batchedSubmits.add(task.id)
    this.dispatch()
    const refusal = this.refused.get(task.id)
    if (refusal !== undefined) {
      this.refused.delete(task.id)
      throw refusal
    }
    return { task, created: true }
  }

  /** As it is now: a change the disk had no room for is seen here before it is stored. */
  get(id: string): TaskRecord | undefined {
    return this.live.get(id) ?? this.unwritten.get(id) ?? this.deps.store.getTask(id)
  }

  /** Whole records, as stored. */
  list(filter: { state?: TaskState; limit: number }): TaskRecord[] {
    return this.deps.store.listTasks(filter)
  }

  /** Summaries, as stored (from the store's summary column: no record is parsed). */
  listSummaries(filter: { state?: TaskState; limit: number }): TaskSummary[] {
    return this.deps.store.listSummaries(filter)
  }

  /** true while the disk holding the store is full: the last write found no room (GET /health says `store: "full"`). */
  get storeFull(): boolean {
    return this.full !== undefined
  }

  counts(): Record<TaskState, number> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>
    for (const [state, n] of this.deps.store.countTasksByState()) if (state in counts) counts[state as TaskState] = n
    return counts
  }

  /** Assigns whatever can be assigned now. Returns the number of legs assigned. */
  dispatch(): number {
    const { registry, router, now: clock } = this.deps
    const now = clock()
    const changed = new Map<string, TaskRecord>()
    const frames: AssignmentFrame[] = []
    const full = new Set<string>()
    let nextWake = Infinity
    const anyAvailable = (): boolean => registry.all().some((i) => i.available)
    // Each assignment is a write: none while changes wait for room on the disk.
    const writable = this.flushUnwritten()
    for (let rank = 3; rank >= 0 && writable && anyAvailable(); rank--) {
      const queue = this.queues[rank]
      if (queue === undefined) continue
      for (const entry of queue) {
        const leg = entry.task.assignments[entry.leg]
        if (leg === undefined) continue
        if (leg.notBefore > now) { nextWake = Math.min(nextWake, leg.notBefore); continue }
        // Joined instances that declare the type are candidates too (router.ts), so the type is part of the key.
        const key = `${entry.task.type}:${leg.targets.join(',')}`
        if (full.has(key)) continue
        const instance = router.pick(entry.task.type, leg.targets, entry.task.strategy as Route['strategy'], leg.tried)
        if (instance === undefined) { full.add(key); if (!anyAvailable()) break; continue }
        this.unqueue(entry)
        const leaseMs = this.deps.tasks.leaseMs
        const assigned = assign(leg, { instance: instance.id, leaseToken: randomUUID(), leaseMs }, now)
        entry.task.assignments[entry.leg] = assigned
        instance.inFlight.add(legKey(entry.task.id, entry.leg))
        entry.task.updatedAt = now
        deriveState(entry.task)
        changed.set(entry.task.id, entry.task)
        const { id, type, content, priority } = entry.task
        const frame: InboxFrame = { kind: 'task', task: { id, type, content, priority }, leaseToken: assigned.leaseToken as string, leaseMs, attempt: assigned.attempts }
        frames.push({ instanceId: instance.id, frame, task: entry.task, index: entry.leg, queued: leg })
      }
    }
    if (nextWake < Infinity) this.wakeAt_(nextWake)
    if (changed.size === 0 && this.admitted.size === 0) return 0
    if (this.batching) {
      for (const task of changed.values()) this.stage(task)
      this.stagedFrames.push(...frames)
      return frames.length
    }
    return this.sendFrames(frames, this.persist(changed.values()))
  }

  /** Sends the frames of stored assignments; one whose write found no room never happened (its leg is queued again). */
  private sendFrames(frames: readonly AssignmentFrame[], buried: ReadonlySet<string>): number {
    let sent = 0
    for (const { instanceId, frame, task, index, queued } of frames) {
      if (buried.has(task.id)) {
        // The disk had no room for the assignment: it never happened, the leg waits in the queue again.
        if (this.unwritten.has(task.id)) this.unassign(task, index, queued)
        continue
      }
      try {
        this.deps.sendToInbox(instanceId, frame)
        sent++
      } catch (err) {
        this.deadLetter(task, `could not be sent to ${instanceId}: ${messageOf(err)}`)
      }
    }
    return sent
  }

  /** Applies an instance's report. Durable before it returns. */
  report(instanceId: string, report: Report): ReportOutcome {
    const task = this.live.get(report.taskId)
    if (task === undefined) return this.deps.store.getTask(report.taskId) === undefined ? 'unknown-task' : 'stale'
    const index = task.assignments.findIndex(
      (l) => l.instance === instanceId && isLegActive(l) && (report.leaseToken === undefined || report.leaseToken === l.leaseToken),
    )
    const leg = task.assignments[index]
    if (leg === undefined) return 'stale'
    // The lease is not running: a report now would act on an attempt that is waiting for its answer.
    if (leg.state === 'needs_input') return 'waiting'
    const now = this.deps.now()
    const { leaseMs } = this.deps.tasks
    switch (report.state) {
      case 'needs_input':
        task.assignments[index] = ask(leg, { question: report.question ?? '', choices: report.choices }, now)
        break
      case 'started':
        task.assignments[index] = start(leg, leaseMs, now)
        break
      case 'progress':
        task.assignments[index] = renew(leg, report.output, leaseMs, now)
        break
      case 'completed':
        this.release(task, index)
        task.assignments[index] = complete(leg, report.output)
        break
      case 'failed':
        this.release(task, index)
        this.settle(task, index, fail(leg, { error: report.error ?? 'failed', retryable: report.retryable !== false }, this.retryPolicy(task), now))
        break
    }
    task.updatedAt = now
    this.finishChange([task])
    return 'applied'
  }

  /**
   * The answer to a leg waiting for input: stored (the leg runs again under a
   * fresh lease) before it goes to the instance's inbox as an `input` frame,
   * so the 202 or the PUBACK means it is on disk. 404 for an unknown task,
   * 409 naming the state when nothing waits.
   */
  respond(id: string, request: TaskRespond): { task: TaskRecord; instance: string } {
    this.mustBeWritable()
    const task = this.live.get(id)
    if (task === undefined) {
      const stored = this.deps.store.getTask(id)
      if (stored === undefined) throw new TrinityError('TRINITY_ERR_TASK_NOT_FOUND', id)
      throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `task ${id} is ${stored.state}, not waiting for input`)
    }
    if (task.state !== 'needs_input') throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `task ${id} is ${task.state}, not waiting for input`)
    // Several legs may wait (fan-out): the one named, else the one that asked first.
    let index = -1
    task.assignments.forEach((leg, i) => {
      if (leg.state !== 'needs_input' || (request.instance !== undefined && leg.instance !== request.instance)) return
      const first = task.assignments[index]
      if (first === undefined || (leg.input?.askedAt ?? 0) < (first.input?.askedAt ?? 0)) index = i
    })
    const leg = task.assignments[index]
    if (leg === undefined || leg.instance === null || leg.leaseToken === null) {
      throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `instance: no leg of task ${id} held by ${request.instance ?? '?'} is waiting for input`, { field: 'instance' })
    }
    const now = this.deps.now()
    const before = snapshot(task)
    task.assignments[index] = answer(leg, request.answer, this.deps.tasks.leaseMs, now)
    task.updatedAt = now
    // No `input` frame for an answer that is not stored: the instance would run on what the hub then forgets.
    if (this.commitRequest(task, before)) {
      try {
        this.deps.sendToInbox(leg.instance, { kind: 'input', taskId: id, leaseToken: leg.leaseToken, answer: request.answer })
      } catch (err) {
        this.deadLetter(task, `its answer could not be sent to ${leg.instance}: ${messageOf(err)}`)
      }
    }
    this.dispatch()
    return { task, instance: leg.instance }
  }

  /**
   * An instance went away (Last Will, or health says offline): its work goes
   * back to the queue. `running`: only what it had started (running, or
   * waiting for input: a restarted process has forgotten both), not what is
   * still assigned and queued in its session.
   */
  instanceLost(instanceId: string, reason: string, which: 'all' | 'running' = 'all'): number {
    const now = this.deps.now()
    const changed: TaskRecord[] = []
    for (const key of [...(this.deps.registry.get(instanceId)?.inFlight ?? [])]) {
      const [taskId, legIndex] = splitKey(key)
      const task = this.live.get(taskId)
      const leg = task?.assignments[legIndex]
      if (task === undefined || leg === undefined) continue
      if (which === 'running' && leg.state === 'assigned') continue
      this.loseLeg(task, legIndex, `${instanceId}: ${reason}`, now)
      changed.push(task)
    }
    this.finishChange(changed)
    return changed.length
  }

  /**
   * Expired leases go back to the queue, and so do legs that waited for input
   * longer than `tasks.inputTimeout` (their lease does not run meanwhile).
   * Called periodically.
   */
  sweepLeases(): number {
    const now = this.deps.now()
    const changed: TaskRecord[] = []
    const { inputTimeoutMs } = this.deps.tasks
    for (const task of this.live.values()) {
      task.assignments.forEach((leg, index) => {
        if (!isLegActive(leg)) return
        const waitUntil = inputDeadline(leg, inputTimeoutMs)
        if (waitUntil !== null && waitUntil <= now) {
          // The instance is still there, waiting on its question: withdraw it, so that attempt stops before the next one starts.
          if (leg.instance !== null && leg.leaseToken !== null) this.sendCancel(leg.instance, task.id, leg.leaseToken)
          this.loseLeg(task, index, `${leg.instance ?? '?'}: no answer within tasks.inputTimeout (${inputTimeoutMs ?? 0} ms)`, now)
          changed.push(task)
          return
        }
        if (leg.leaseExpiresAt === null || leg.leaseExpiresAt > now) return
        this.loseLeg(task, index, `${leg.instance ?? '?'}: lease expired`, now)
        changed.push(task)
      })
    }
    this.finishChange(changed)
    return changed.length
  }

  cancel(id: string): TaskRecord {
    this.mustBeWritable()
    const task = this.live.get(id)
    if (task === undefined) {
      const stored = this.deps.store.getTask(id)
      if (stored === undefined) throw new TrinityError('TRINITY_ERR_TASK_NOT_FOUND', id)
      throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `task ${id} is ${stored.state}`)
    }
    const before = snapshot(task)
    const withdrawn: { instance: string; leaseToken: string }[] = []
    const cancelled: number[] = []
    task.assignments.forEach((leg, index) => {
      if (isLegFinished(leg)) return
      if (isLegActive(leg) && leg.instance !== null && leg.leaseToken !== null) withdrawn.push({ instance: leg.instance, leaseToken: leg.leaseToken })
      task.assignments[index] = cancel(leg)
      cancelled.push(index)
    })
    task.state = 'cancelled'
    task.updatedAt = this.deps.now()
    // The queue, the instances' slots and the cancel frames follow the write: a cancel the disk has no
    // room for is undone whole, and no instance stops work on a task that still runs.
    this.commitRequest(task, before)
    for (const index of cancelled) {
      this.release(task, index)
      const entry = this.queued.get(legKey(id, index))
      if (entry !== undefined) this.unqueue(entry)
    }
    for (const { instance, leaseToken } of withdrawn) this.sendCancel(instance, id, leaseToken)
    this.dispatch()
    return task
  }

  /** Replays a dead, failed or cancelled task: its unfinished legs start over. */
  retry(id: string): TaskRecord {
    this.mustBeWritable()
    const task = this.live.get(id) ?? this.deps.store.getTask(id)
    if (task === undefined) throw new TrinityError('TRINITY_ERR_TASK_NOT_FOUND', id)
    if (!TERMINAL_TASK_STATES.has(task.state) || task.state === 'completed') {
      throw new TrinityError('TRINITY_ERR_TASK_CONFLICT', `only dead, failed or cancelled tasks can be retried; ${id} is ${task.state}`)
    }
    const now = this.deps.now()
    const before = snapshot(task)
    task.assignments = task.assignments.map((leg) => (leg.state === 'completed' ? leg : replay(leg, now)))
    task.state = 'queued'
    delete task.error
    delete task.result
    task.updatedAt = now
    // Queued only once stored: a replay the disk has no room for leaves the task as it was, finished.
    if (this.commitRequest(task, before)) {
      this.live.set(task.id, task)
      task.assignments.forEach((leg, index) => { if (leg.state === 'queued') this.enqueue(task, index) })
    }
    this.dispatch()
    return task
  }

  close(): void {
    // What a batch staged is written now: its messages' acknowledgements wait for it.
    if (this.staged.size > 0 || this.admitted.size > 0 || this.afterCommit.length > 0) this.persist([])
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer)
    this.wakeTimer = undefined
    if (this.full !== undefined) clearInterval(this.full.retry)
  }

  // -------------------------------------------------------------------------

  /** A cancel frame for one attempt; a failure to send is logged: the leg moves on either way. */
  private sendCancel(instanceId: string, taskId: string, leaseToken: string): void {
    try {
      this.deps.sendToInbox(instanceId, { kind: 'cancel', taskId, leaseToken })
    } catch (err) {
      this.deps.log.warn({ taskId, instance: instanceId, err: messageOf(err) }, 'could not send a cancel')
    }
  }

  private retryPolicy(task: TaskRecord): RetryPolicy {
    return { maxAttempts: task.maxAttempts, backoff: this.deps.tasks.retryBackoff }
  }

  /** The leg's holder lost it (lease expired, instance offline or restarted): retried, or a dead letter. */
  private loseLeg(task: TaskRecord, index: number, reason: string, now: number): void {
    this.release(task, index)
    this.settle(task, index, lose(task.assignments[index] as Assignment, reason, this.retryPolicy(task), now))
    task.updatedAt = now
  }

  /** Stores a leg that came back from fail or lose: queued again, or finished for good (said in the log). */
  private settle(task: TaskRecord, index: number, leg: Assignment): void {
    task.assignments[index] = leg
    if (leg.state === 'queued') return this.enqueue(task, index)
    this.deps.log.warn({ taskId: task.id, leg: index, attempts: leg.attempts, error: leg.error }, `task leg ${leg.state}`)
  }

  private release(task: TaskRecord, index: number): void {
    const leg = task.assignments[index]
    if (leg?.instance !== null && leg?.instance !== undefined) this.deps.registry.get(leg.instance)?.inFlight.delete(legKey(task.id, index))
  }

  /** Derive, persist (one commit), publish, then dispatch what the change made possible. */
  private finishChange(tasks: Iterable<TaskRecord>): void {
    const list = [...tasks]
    if (list.length === 0) return
    for (const task of list) deriveState(task)
    if (this.batching) for (const task of list) this.stage(task)
    else this.persist(list)
    this.dispatch()
  }

  /**
   * Stores a client's change to one task (respond, cancel, retry) before anything follows from it, so
   * a 2xx or a PUBACK means it is on disk. A change the disk has no room for is not held (the client
   * would take it for done) but undone, the record put back as `before`, and refused with the 507.
   * true when stored; false when the write failed otherwise and the task is a dead letter.
   */
  private commitRequest(task: TaskRecord, before: TaskRecord): boolean {
    deriveState(task)
    const buried = this.persist([task], task)
    const refusal = this.refused.get(task.id)
    if (refusal === undefined) return !buried.has(task.id)
    this.refused.delete(task.id)
    restore(task, before)
    throw refusal
  }

  /**
   * Writes the changed tasks (and any just admitted, and any a full disk held
   * back) in one commit, then publishes their events. Returns the ids of tasks
   * not written: when the commit fails, each task is written in a commit of
   * its own and those that still fail are dead letters, so the others are not
   * held back; for lack of space, a submission is refused (507) and a change
   * to an accepted task is held in `unwritten`, tried again with the next write,
   * unless it is `request`, a client's change, which is refused (`commitRequest`).
   */
  private persist(tasks: Iterable<TaskRecord>, request?: TaskRecord): Set<string> {
    // What a batch staged goes in this commit too, and what followed from it (events, frames, acknowledgements) after it.
    const direct = new Set(tasks)
    const list = [...new Set([...this.staged, ...direct])]
    this.staged.clear()
    const stagedEvents = this.stagedEvents.splice(0)
    const frames = this.stagedFrames.splice(0)
    const acks = this.afterCommit.splice(0)
    const batched = [...this.batchedSubmits]
    this.batchedSubmits.clear()
    const admitted = [...this.admitted]
    this.admitted.clear()
    const { store } = this.deps
    const listed = new Set(list)
    // Admitted tasks that changed since are written from the record as it is now.
    const writes: [TaskRecord, () => void][] = []
    const save = (task: TaskRecord): void => store.saveTaskJson(task, JSON.stringify(task), this.json.summary(task))
    for (const [id] of admitted) {
      const task = this.live.get(id)
      if (task !== undefined && !listed.has(task)) writes.push([task, () => save(task)])
    }
    for (const task of list) writes.push([task, () => save(task)])
    const retried = [...this.unwritten.values()].filter((task) => !listed.has(task))
    for (const task of retried) writes.push([task, () => save(task)])
    const admittedIds = new Set(admitted.map(([id]) => id))
    const buried = new Set<string>()
    let noRoom: TrinityError | undefined
    try {
      store.transaction(() => { for (const [, write] of writes) write() })
    } catch (err) {
      // Another hub leads (a replicated store's fence): nothing here is this hub's to write any more, nor
      // to dead-letter; nothing follows from it (the acknowledgements stay held), and the hub steps down.
      if (isTrinityError(err, 'TRINITY_ERR_STORE_FENCED')) {
        this.deps.log.warn({ reason: err.message, tasks: writes.length }, 'the store refused the write: another hub leads')
        return new Set(writes.map(([task]) => task.id))
      }
      // A full disk is said once (noSpace), not on every retry.
      if (!isTrinityError(err, 'TRINITY_ERR_STORE_FULL')) this.deps.log.error({ err, tasks: writes.length }, 'a task write failed: writing the tasks one by one')
      for (const [task, write] of writes) {
        try {
          store.transaction(write)
        } catch (one) {
          buried.add(task.id)
          if (!isTrinityError(one, 'TRINITY_ERR_STORE_FULL')) { this.deadLetter(task, `could not be stored: ${messageOf(one)}`); continue }
          noRoom = one
          // Not yet acknowledged: refusing it (507) loses nothing. Accepted: held, never given up for want of room.
          if (admittedIds.has(task.id)) this.refuse(task, one)
          else if (task === request) this.refused.set(task.id, one)
          else this.unwritten.set(task.id, task)
        }
      }
    }
    for (const [task] of writes) if (!buried.has(task.id)) this.unwritten.delete(task.id)
    if (noRoom !== undefined) this.noSpace(noRoom)
    else if (this.unwritten.size === 0 && writes.some(([task]) => !buried.has(task.id))) this.spaceAgain()
    for (const [id, event] of admitted) if (!buried.has(id)) this.deps.publishEvent(id, event)
    for (const [id, event] of stagedEvents) {
      if (buried.has(id)) continue
      try {
        this.deps.publishEvent(id, event)
      } catch (err) {
        const task = this.live.get(id)
        if (task !== undefined) this.deadLetter(task, `its event could not be published: ${messageOf(err)}`)
        buried.add(id)
      }
    }
    for (const task of [...list, ...retried]) {
      if (buried.has(task.id)) continue
      if (TERMINAL_TASK_STATES.has(task.state)) this.live.delete(task.id)
      // A staged change's event is the one taken when it was staged.
      if (!direct.has(task) && !retried.includes(task)) continue
      try {
        this.deps.publishEvent(task.id, this.json.event(task))
      } catch (err) {
        this.deadLetter(task, `its event could not be published: ${messageOf(err)}`)
        buried.add(task.id)
      }
    }
    if (frames.length > 0) this.sendFrames(frames, buried)
    for (const id of batched) {
      const refusal = this.refused.get(id)
      if (refusal === undefined) continue
      this.refused.delete(id)
      this.deps.refusedLater?.(id, refusal)
    }
    for (const ack of acks) ack()
    return buried
  }

  /**
   * Writes what a full disk held back, if anything; true when nothing is held
   * (a retry failing again keeps it held, and says nothing new).
   */
  private flushUnwritten(): boolean {
    if (this.unwritten.size > 0) this.persist([])
    return this.unwritten.size === 0
  }

  /** Client writes while changes to accepted tasks wait for room: refused (507) rather than taken into memory. */
  private mustBeWritable(): void {
    if (this.full === undefined || this.flushUnwritten()) return
    throw this.full.error
  }

  /** The first write to find the disk full: said once, and the held changes retried each second from now on. */
  private noSpace(error: TrinityError): void {
    if (this.full !== undefined) { this.full.error = error; return }
    const retry = setInterval(() => {
      try {
        if (this.unwritten.size > 0) this.dispatch()
      } catch (err) {
        this.deps.log.error({ err }, 'retrying the held task writes failed')
      }
    }, 1000)
    retry.unref()
    this.full = { error, retry }
    this.deps.log.error({ reason: error.message, held: this.unwritten.size }, 'the store is full: changes to accepted tasks are kept in memory and retried each second; new submissions are refused (507) and nothing new is assigned until there is room')
  }

  /** A write got through: the disk has room again. */
  private spaceAgain(): void {
    if (this.full === undefined) return
    clearInterval(this.full.retry)
    this.full = undefined
    this.deps.log.info('the store has room again: held task changes written, dispatch resumes')
  }

  /** An assignment whose write found no room: the leg goes back to the queue as it was, and its instance keeps no slot for it. */
  private unassign(task: TaskRecord, index: number, queued: Assignment): void {
    this.release(task, index)
    task.assignments[index] = queued
    this.enqueue(task, index)
    deriveState(task)
  }

  /** Undoes a submission that could not be stored: out of the queue and its instance, as if never made. */
  private refuse(task: TaskRecord, why: TrinityError): void {
    this.deps.log.warn({ taskId: task.id, reason: why.message }, 'submission refused: the store is full')
    task.assignments.forEach((_, index) => {
      this.release(task, index)
      const entry = this.queued.get(legKey(task.id, index))
      if (entry !== undefined) this.unqueue(entry)
    })
    this.live.delete(task.id)
    this.refused.set(task.id, why)
  }

  /**
   * A dead letter at once, with the reason: the task's unfinished legs leave
   * the queue and their instances, whatever attempts remain (retrying cannot
   * help a record the hub cannot handle). Stored whole if it can be, else
   * without its bodies (content, result, outputs), which the error then says.
   */
  private deadLetter(task: TaskRecord, reason: string): void {
    this.deps.log.error({ taskId: task.id, reason }, 'task dead-lettered')
    task.assignments.forEach((leg, index) => {
      this.release(task, index)
      const entry = this.queued.get(legKey(task.id, index))
      if (entry !== undefined) this.unqueue(entry)
      if (!isLegFinished(leg)) task.assignments[index] = bury(leg, reason)
    })
    task.state = 'dead'
    task.error = reason
    task.updatedAt = this.deps.now()
    this.live.delete(task.id)
    this.admitted.delete(task.id)
    let stored = task
    try {
      this.deps.store.saveTask(task)
    } catch (err) {
      if (isTrinityError(err, 'TRINITY_ERR_STORE_FULL')) {
        // Written, and its event published, when there is room (persist).
        this.unwritten.set(task.id, task)
        this.noSpace(err)
        return
      }
      stored = withoutBodies(task, `${reason}; its content, result and outputs could not be stored either (${messageOf(err)}) and were dropped`)
      try {
        this.deps.store.saveTask(stored)
      } catch (again) {
        this.deps.log.error({ taskId: task.id, err: again }, 'the dead letter could not be stored: the task is lost')
      }
    }
    try {
      this.deps.publishEvent(task.id, JSON.stringify(taskEvent(stored, false, contentFacts(stored.content))))
    } catch (err) {
      this.deps.log.error({ taskId: task.id, err }, 'the dead letter\'s event could not be published')
    }
  }

  private enqueue(task: TaskRecord, leg: number): void {
    const entry: QueuedLeg = { task, leg, removed: false }
    this.queues[PRIORITY_RANK[task.priority]]?.push(entry)
    this.queued.set(legKey(task.id, leg), entry)
  }

  private unqueue(entry: QueuedLeg): void {
    this.queues[PRIORITY_RANK[entry.task.priority]]?.remove(entry)
    this.queued.delete(legKey(entry.task.id, entry.leg))
  }

  private wakeAt_(at: number): void {
    if (at >= this.wakeAt && this.wakeTimer !== undefined) return
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer)
    this.wakeAt = at
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined
      this.wakeAt = Infinity
      this.dispatch()
    }, Math.max(0, at - this.deps.now()))
    this.wakeTimer.unref()
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The record without what a client sent or an instance reported: what is left to store of a task whose bodies cannot be. */
function withoutBodies(task: TaskRecord, error: string): TaskRecord {
  const { result: _result, ...rest } = task
  const assignments = task.assignments.map(({ output: _output, progress: _progress, ...leg }) => leg)
  return { ...rest, content: null, assignments, error }
}

/** The record as it is now: legs are never changed in place (leg-lifecycle.ts), so copying the list of them copies them. */
function snapshot(task: TaskRecord): TaskRecord {
  return { ...task, assignments: [...task.assignments] }
}

/** Puts the record back as `snapshot` took it, in place: the queue and the instances hold this very object. */
function restore(task: TaskRecord, before: TaskRecord): void {
  for (const key of Object.keys(task) as (keyof TaskRecord)[]) if (!(key in before)) delete (task as Partial<TaskRecord>)[key]
  Object.assign(task, before)
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf('#')
  return [key.slice(0, at), Number(key.slice(at + 1))]
}
