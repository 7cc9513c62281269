/**
 * The dashboard's model of the fleet, fed by bus messages (and the one-off
 * HTTP fill at start). One handler per topic kind behind a dispatch table, so
 * a new kind in the contract is a compile error here until it is handled.
 *
 * Everything is bounded: at 1,000 events a second the page holds the last
 * MAX_ROWS messages and activity lines and MAX_TASKS tasks, whatever the rate.
 * Handlers only change the model and mark what changed; drawing happens at
 * most once a frame (see frame.ts).
 */
import { ACTIVE_TASK_STATES, PRIORITY_RANK, type HealthState } from '../../src/contract/constants.js'
import type { InstanceView } from '../../src/contract/http.js'
import type { Health } from '../../src/contract/payloads/instance.js'
import type { Message } from '../../src/contract/payloads/message.js'
import type { HubStats } from '../../src/contract/payloads/hub.js'
import type { ParsedTopic, TopicKind } from '../../src/contract/topics.js'
import type { PayloadOf, ShownKind, TaskWire } from './payloads.js'
import { bridgeView, computerView, supervisorView, type BridgeView, type ChildView, type ComputerView, type SupervisorView } from './platform.js'
import { short } from './dom.js'
import { toTaskRow, type TaskRow } from './tasks.js'
import { toneOf, type Tone } from './tone.js'

export const MAX_ROWS = 200
const MAX_TASKS = 500
const TIMELINE_LENGTH = 40

export type Section = 'instances' | 'tasks' | 'messages' | 'computers' | 'platform' | 'stats' | 'activity' | 'connection'

export interface HealthPoint { state: HealthState; at: number; ms: number | null }

export interface InstanceRow {
  id: string
  name: string | null
  role: string | null
  /** From the retained status topic: online / offline (Will) / error / draining. It says connected, not state. */
  status: string | null
  /** The coordinator's verdict (`health/{id}`), which already folds births and Wills in. */
  health: HealthState | null
  responseMs: number | null
  avgMs: number | null
  p95Ms: number | null
  lastCheckAt: number | null
  reason: string | null
  /** Oldest first, at most TIMELINE_LENGTH, one per `checkedAt`. */
  timeline: HealthPoint[]
  /** What the page shows and logs, set only by Store.settle (see foldState). */
  state: string
  /** The reason shown beside `state`. */
  shownReason: string | null
}

/**
 * The one rule for an instance's state on the page, the same as GET
 * /instances (registry view()): a supervisor's crash loop outranks
 * everything; otherwise the coordinator's health verdict, which already
 * folds births (online at once) and Wills (offline at once) in; the status
 * topic only until the first health record arrives.
 */
function foldState(row: InstanceRow, process: ChildView | undefined): { state: string; reason: string | null } {
  if (process?.state === 'error') return { state: 'error', reason: process.reason ?? row.reason }
  if (row.health !== null) return { state: row.health, reason: row.reason }
  return { state: row.status ?? 'unknown', reason: row.reason }
}

/** Folds health points into a timeline: one per check time, oldest first, the newest TIMELINE_LENGTH. */
function mergeTimeline(timeline: readonly HealthPoint[], points: readonly HealthPoint[]): HealthPoint[] {
  const byTime = new Map<number, HealthPoint>()
  for (const p of [...timeline, ...points]) byTime.set(p.at, p)
  return [...byTime.values()].sort((a, b) => a.at - b.at).slice(-TIMELINE_LENGTH)
}

function healthPoint(health: Health): HealthPoint {
  return { state: health.state, at: health.checkedAt, ms: health.responseMs }
}

export interface ActivityEntry { seq: number; at: number; tone: Tone; text: string }


export class Store {
  readonly instances = new Map<string, InstanceRow>()
  /** Least recently changed first (a Map keeps insertion order; a change re-inserts). */
  readonly tasks = new Map<string, TaskRow>()
  /** Newest first. */
  messages: Message[] = []
  readonly computers = new Map<string, ComputerView>()
  supervisor: SupervisorView | null = null
  bridge: BridgeView | null = null
  hubStats: HubStats | null = null
  /** Newest first. */
  activity: ActivityEntry[] = []
  connected = false
  /** Task types some instance can take (from capabilities), offered by the submit form. */
  readonly taskTypes = new Set<string>()
  /** The last task submitted from this page, whose outcome the form shows. */
  submitted: string | null = null
  /** Bus events seen since the page loaded. */
  events = 0
  private seq = 0
  private readonly dirty = new Set<Section>()

  constructor(private readonly onDirty: () => void) {}

  mark(section: Section): void {
    this.dirty.add(section)
    this.onDirty()
  }

  /** The sections changed since the last call, and forgets them. */
  takeDirty(): Set<Section> {
    const out = new Set(this.dirty)
    this.dirty.clear()
    return out
  }

  log(tone: Tone, text: string, at = Date.now()): void {
    this.activity.unshift({ seq: ++this.seq, at, tone, text })
    if (this.activity.length > MAX_ROWS) this.activity.length = MAX_ROWS
    this.mark('activity')
  }

  setConnected(connected: boolean, reason?: string): void {
    if (this.connected === connected) return
    this.connected = connected
    this.log(connected ? 'ok' : 'bad', connected ? 'bus connected' : `bus disconnected${reason === undefined ? '' : ` (${reason})`}; reconnecting`)
    this.mark('connection')
    this.mark('platform')
  }

  instance(id: string): InstanceRow {
    let row = this.instances.get(id)
    if (row === undefined) {
      row = { id, name: null, role: null, status: null, health: null, responseMs: null, avgMs: null, p95Ms: null, lastCheckAt: null, reason: null, timeline: [], state: 'unknown', shownReason: null }
      this.instances.set(id, row)
    }
    return row
  }

  /**
   * Recomputes what an instance shows after any of its inputs changed, and
   * logs a change in the same words: the activity log and the card read the
   * same field, so they cannot disagree.
   */
  settle(id: string): void {
    const row = this.instance(id)
    const { state, reason } = foldState(row, this.processOf(id))
    row.shownReason = reason
    if (row.state === state) return
    row.state = state
    this.log(toneOf(state), `${id} is ${state}${reason === null ? '' : ` (${reason})`}`)
  }

  /**
   * The GET /instances fill: the registry's view (the contract's InstanceView,
   * decoded with its schema), newer than what the bus gave only where its
   * checks are newer.
   */
  fillInstance(view: InstanceView): void {
    const row = this.instance(view.id)
    row.name = view.name
    row.role = view.role
    this.addTaskTypes(view.capabilities)
    const checkedAt = view.lastCheckAt
    // view().state says `error` for a crash loop; that comes from the supervisor's own status, not health.
    const crashLoop = view.process?.state === 'error'
    if (row.lastCheckAt === null || (checkedAt !== null && checkedAt > row.lastCheckAt)) {
      if (!crashLoop) row.health = view.state
      row.responseMs = view.responseMs.last
      row.avgMs = view.responseMs.avg
      row.p95Ms = view.responseMs.p95
      row.lastCheckAt = checkedAt
      if (!crashLoop) row.reason = view.reason
    }
    // Checks made before the page opened (README: the last 40 checks).
    row.timeline = mergeTimeline(row.timeline, view.recentChecks.map(healthPoint))
    this.settle(row.id)
    this.mark('instances')
  }

  /** Legs held by each instance in tasks the page knows of. */
  inFlight(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const task of this.tasks.values()) {
      for (const leg of task.assignments) {
        if (leg.instance !== null && (leg.state === 'assigned' || leg.state === 'running' || leg.state === 'needs_input')) counts.set(leg.instance, (counts.get(leg.instance) ?? 0) + 1)
      }
    }
    return counts
  }

  /** The supervisor's view of an instance's process, when a supervisor runs it. */
  processOf(id: string): ChildView | undefined {
    return this.supervisor?.children.find((c) => c.instance === id)
  }

  /** Restarts per instance, from the supervisor's children. */
  restarts(): Map<string, number> {
    const out = new Map<string, number>()
    for (const child of this.supervisor?.children ?? []) {
      if (child.instance !== null && child.restarts !== null) out.set(child.instance, child.restarts)
    }
    return out
  }

  /** Tasks by state (active first), then priority (highest first), then most recently changed. */
  sortedTasks(filter: (task: TaskRow) => boolean = () => true): TaskRow[] {
    const rank = (t: TaskRow): number => (ACTIVE_TASK_STATES.has(t.state) ? 0 : 1)
    return [...this.tasks.values()].filter(filter).sort((a, b) =>
      rank(a) - rank(b) || (PRIORITY_RANK[b.priority] ?? 0) - (PRIORITY_RANK[a.priority] ?? 0) || b.updatedAt - a.updatedAt)
  }

  // --- inputs ----------------------------------------------------------------

  /**
   * One bus message: `payload` is decoded with the schema of the topic's kind
   * (bus.ts, payloads.ts), or null for an empty (cleared retained) payload.
   */
  apply(topic: ParsedTopic, payload: unknown): void {
    this.events++
    const handler = this.handlers[topic.kind] as (t: ParsedTopic, p: unknown) => void
    handler(topic, payload)
  }

  /**
   * A task event or list item (a summary, or an older hub's full record); an
   * older one than the page has is ignored. `quiet`: no activity line (the HTTP fill).
   */
  upsertTask(wire: TaskWire, quiet = false): void {
    const previous = this.tasks.get(wire.id)
    const task = toTaskRow(wire, previous)
    if (previous !== undefined && previous.updatedAt > task.updatedAt) return
    this.tasks.delete(task.id)
    this.tasks.set(task.id, task)
    while (this.tasks.size > MAX_TASKS) {
      const oldest = this.tasks.keys().next().value
      if (oldest === undefined) break
      this.tasks.delete(oldest)
    }
    if (!quiet && previous?.state !== task.state) {
      const tone = toneOf(task.state)
      const detail = task.state === 'failed' || task.state === 'dead' ? `: ${task.error ?? ''}` : ''
      const what = task.contentPreview === '' ? task.type : `${task.type}: ${short(task.contentPreview, 48)}`
      this.log(tone === 'idle' || tone === 'busy' ? 'idle' : tone, `task ${task.id} (${what}) ${previous?.state ?? 'new'} → ${task.state}${detail}`)
    }
    this.mark('tasks')
    this.mark('instances')
  }

  addMessage(message: Message, quiet = false): void {
    if (this.messages.some((m) => m.id === message.id)) return
    this.messages.unshift(message)
    this.messages.sort((a, b) => b.ts - a.ts)
    if (this.messages.length > MAX_ROWS) this.messages.length = MAX_ROWS
    if (!quiet) this.log('idle', `message ${message.from} → ${message.to}: ${message.message.slice(0, 120)}`)
    this.mark('messages')
  }

  addTaskTypes(capabilities: readonly string[] | undefined): void {
    for (const type of capabilities ?? []) if (!this.taskTypes.has(type)) { this.taskTypes.add(type); this.mark('tasks') }
  }

  applyHealth(id: string, health: Health): void {
    const row = this.instance(id)
    // The HTTP fill may already hold a newer verdict; an older record only joins the timeline.
    if (row.lastCheckAt === null || health.checkedAt >= row.lastCheckAt) {
      row.health = health.state
      row.responseMs = health.responseMs
      if (health.avgMs !== undefined) row.avgMs = health.avgMs
      if (health.p95Ms !== undefined) row.p95Ms = health.p95Ms
      row.lastCheckAt = health.checkedAt
      row.reason = health.reason ?? null
    }
    row.timeline = mergeTimeline(row.timeline, [{ state: health.state, at: health.checkedAt, ms: health.responseMs }])
    this.settle(id)
    this.mark('instances')
  }

  /** A shown kind's handler gets its decoded payload, or null when the retained payload was cleared. */
  private readonly handlers: {
    [K in TopicKind]: (topic: Extract<ParsedTopic, { kind: K }>, payload: K extends ShownKind ? PayloadOf<K> | null : unknown) => void
  } = {
    instanceStatus: (t, status) => {
      if (status === null) return
      const row = this.instance(t.instanceId)
      row.status = status.state
      row.name = status.name ?? row.name
      row.role = status.role ?? row.role
      this.addTaskTypes(status.capabilities)
      // Connected or not; the state follows with the coordinator's health record (it publishes one on every status).
      this.settle(t.instanceId)
      this.mark('instances')
    },
    health: (t, health) => {
      if (health !== null) this.applyHealth(t.instanceId, health)
    },
    taskEvent: (_t, task) => {
      if (task !== null) this.upsertTask(task)
    },
    message: (_t, message) => {
      if (message !== null) this.addMessage(message)
    },
    hubStats: (_t, stats) => {
      if (stats === null) return
      this.hubStats = stats
      this.mark('stats')
      this.mark('platform')
    },
    hubErrors: (_t, error) => {
      if (error === null) return
      this.log('bad', `hub rejected ${error.topic}: ${error.reason} (${error.code})`)
    },
    supervisorStatus: (_t, status) => {
      const before = this.supervisor
      this.supervisor = status === null ? null : supervisorView(status)
      for (const child of this.supervisor?.children ?? []) {
        const was = before?.children.find((c) => c.name === child.name)
        if (was !== undefined && was.state !== child.state) this.log(toneOf(child.state, 'process'), `${child.name} ${was.state} → ${child.state}`)
      }
      // A crash loop starts or ends here.
      for (const id of this.instances.keys()) this.settle(id)
      this.mark('platform')
      this.mark('instances')
    },
    bridgeStatus: (_t, status) => {
      const before = this.bridge
      this.bridge = status === null ? null : bridgeView(status)
      if (this.bridge !== null && before?.state !== this.bridge.state) {
        this.log(toneOf(this.bridge.state), `git bridge ${this.bridge.state}${this.bridge.lastError === null ? '' : `: ${this.bridge.lastError}`}`)
      }
      this.mark('platform')
    },
    computerStatus: (t, status) => {
      if (status === null) this.computers.delete(t.computer)
      else this.computers.set(t.computer, computerView(status))
      this.mark('computers')
    },
    computerMessage: (t, message) => {
      if (message !== null) this.log('idle', `from computer ${t.computer}: ${message.message.slice(0, 120)}`)
    },
    // Not subscribed to: requests and traffic between the coordinator and instances.
    taskSubmit: () => undefined,
    taskRespond: () => undefined,
    instanceInbox: () => undefined,
    instanceReport: () => undefined,
    instanceHeartbeat: () => undefined,
    supervisorCommand: () => undefined,
    bridgeSync: () => undefined,
    computerSend: () => undefined,
  }
}
