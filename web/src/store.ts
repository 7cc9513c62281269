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
import type { Health, HealthState, HubError, HubStats, InstanceStatus, Message, Priority, TaskRecord } from '../../src/contract/payloads.js'
import type { ParsedTopic, TopicKind } from '../../src/contract/topics.js'
import { isRecord, num, readBridge, readComputer, readSupervisor, str, type BridgeView, type ChildView, type ComputerView, type SupervisorView } from './platform.js'
import { toneOf, type Tone } from './tone.js'

export const MAX_ROWS = 200
export const MAX_TASKS = 500
export const TIMELINE_LENGTH = 40

export type Section = 'instances' | 'tasks' | 'messages' | 'computers' | 'platform' | 'stats' | 'activity' | 'connection'

export interface HealthPoint { seq: number; state: HealthState; at: number; ms: number | null }

export interface InstanceRow {
  id: string
  name: string | null
  role: string | null
  /** From the retained status topic: online / offline (Will) / error / draining. */
  status: string | null
  health: HealthState | null
  responseMs: number | null
  avgMs: number | null
  p95Ms: number | null
  lastCheckAt: number | null
  reason: string | null
  timeline: HealthPoint[]
}

/**
 * The state to show: a supervisor's crash loop, a Will or an error status win
 * at once; otherwise the coordinator's health verdict.
 */
export function displayState(row: InstanceRow, process?: ChildView): string {
  if (process?.state === 'error') return 'error'
  if (row.status === 'offline' || row.status === 'error') return row.status
  return row.health ?? row.status ?? 'unknown'
}

export interface ActivityEntry { seq: number; at: number; tone: Tone; text: string }

const PRIORITY_RANK: Readonly<Record<Priority, number>> = { low: 0, normal: 1, high: 2, critical: 3 }
const ACTIVE = new Set(['queued', 'assigned', 'running'])

export class Store {
  readonly instances = new Map<string, InstanceRow>()
  /** Least recently changed first (a Map keeps insertion order; a change re-inserts). */
  readonly tasks = new Map<string, TaskRecord>()
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

  setConnected(connected: boolean): void {
    if (this.connected === connected) return
    this.connected = connected
    this.log(connected ? 'ok' : 'bad', connected ? 'bus connected' : 'bus disconnected; reconnecting')
    this.mark('connection')
    this.mark('platform')
  }

  instance(id: string): InstanceRow {
    let row = this.instances.get(id)
    if (row === undefined) {
      row = { id, name: null, role: null, status: null, health: null, responseMs: null, avgMs: null, p95Ms: null, lastCheckAt: null, reason: null, timeline: [] }
      this.instances.set(id, row)
    }
    return row
  }

  /** Legs held by each instance in tasks the page knows of. */
  inFlight(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const task of this.tasks.values()) {
      for (const leg of task.assignments) {
        if (leg.instance !== null && (leg.state === 'assigned' || leg.state === 'running')) counts.set(leg.instance, (counts.get(leg.instance) ?? 0) + 1)
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
  sortedTasks(filter: (task: TaskRecord) => boolean = () => true): TaskRecord[] {
    const rank = (t: TaskRecord): number => (ACTIVE.has(t.state) ? 0 : 1)
    return [...this.tasks.values()].filter(filter).sort((a, b) =>
      rank(a) - rank(b) || (PRIORITY_RANK[b.priority] ?? 0) - (PRIORITY_RANK[a.priority] ?? 0) || b.updatedAt - a.updatedAt)
  }

  // --- inputs ----------------------------------------------------------------

  /** One bus message: `payload` is the parsed JSON, or null for an empty (cleared retained) payload. */
  apply(topic: ParsedTopic, payload: unknown): void {
    this.events++
    const handler = this.handlers[topic.kind] as (t: ParsedTopic, p: unknown) => void
    handler(topic, payload)
  }

  /** A task record; an older one than the page has is ignored. `quiet`: no activity line (the HTTP fill). */
  upsertTask(task: TaskRecord, quiet = false): void {
    if (!isRecord(task) || typeof task.id !== 'string') return
    const previous = this.tasks.get(task.id)
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
      this.log(tone === 'idle' || tone === 'busy' ? 'idle' : tone, `task ${task.id} (${task.type}) ${previous?.state ?? 'new'} → ${task.state}${detail}`)
    }
    this.mark('tasks')
    this.mark('instances')
  }

  addMessage(message: Message, quiet = false): void {
    if (!isRecord(message) || typeof message.id !== 'string') return
    if (this.messages.some((m) => m.id === message.id)) return
    this.messages.unshift(message)
    this.messages.sort((a, b) => b.ts - a.ts)
    if (this.messages.length > MAX_ROWS) this.messages.length = MAX_ROWS
    if (!quiet) this.log('idle', `message ${message.from} → ${message.to}: ${message.message.slice(0, 120)}`)
    this.mark('messages')
  }

  addTaskTypes(capabilities: unknown): void {
    if (!Array.isArray(capabilities)) return
    for (const type of capabilities) if (typeof type === 'string' && !this.taskTypes.has(type)) { this.taskTypes.add(type); this.mark('tasks') }
  }

  applyHealth(id: string, health: Health): void {
    const row = this.instance(id)
    const changed = row.health !== health.state
    row.health = health.state
    row.responseMs = health.responseMs
    if (health.avgMs !== undefined) row.avgMs = health.avgMs
    if (health.p95Ms !== undefined) row.p95Ms = health.p95Ms
    row.lastCheckAt = health.checkedAt
    row.reason = health.reason ?? null
    row.timeline.push({ seq: ++this.seq, state: health.state, at: health.checkedAt, ms: health.responseMs })
    if (row.timeline.length > TIMELINE_LENGTH) row.timeline.shift()
    if (changed) this.log(toneOf(health.state), `${id} health ${health.state}${health.reason === undefined ? '' : ` (${health.reason})`}`)
    this.mark('instances')
  }

  private readonly handlers: { [K in TopicKind]: (topic: Extract<ParsedTopic, { kind: K }>, payload: unknown) => void } = {
    instanceStatus: (t, payload) => {
      const status = payload as Partial<InstanceStatus> | null
      if (!isRecord(status)) return
      const row = this.instance(t.instanceId)
      const state = str(status.state)
      if (row.status !== state) this.log(toneOf(state), `${t.instanceId} is ${state ?? '—'}${state === 'offline' ? ' (last will)' : ''}`)
      row.status = state
      row.name = str(status.name) ?? row.name
      row.role = str(status.role) ?? row.role
      this.addTaskTypes(status.capabilities)
      this.mark('instances')
    },
    health: (t, payload) => {
      if (isRecord(payload) && typeof payload['state'] === 'string' && num(payload['checkedAt']) !== null) this.applyHealth(t.instanceId, payload as unknown as Health)
    },
    taskEvent: (_t, payload) => {
      if (isRecord(payload)) this.upsertTask(payload as unknown as TaskRecord)
    },
    message: (_t, payload) => {
      if (isRecord(payload) && typeof payload['message'] === 'string') this.addMessage(payload as unknown as Message)
    },
    hubStats: (_t, payload) => {
      if (!isRecord(payload)) return
      this.hubStats = payload as unknown as HubStats
      this.mark('stats')
      this.mark('platform')
    },
    hubErrors: (_t, payload) => {
      if (!isRecord(payload)) return
      const error = payload as Partial<HubError>
      this.log('bad', `hub rejected ${str(error.topic) ?? '—'}: ${str(error.reason) ?? '—'}`)
    },
    supervisorStatus: (_t, payload) => {
      const before = this.supervisor
      this.supervisor = readSupervisor(payload)
      for (const child of this.supervisor?.children ?? []) {
        const was = before?.children.find((c) => c.name === child.name)
        if (was !== undefined && was.state !== child.state) this.log(toneOf(child.state, 'process'), `${child.name} ${was.state ?? '—'} → ${child.state ?? '—'}`)
      }
      this.mark('platform')
      this.mark('instances')
    },
    bridgeStatus: (_t, payload) => {
      const before = this.bridge
      this.bridge = readBridge(payload)
      if (this.bridge !== null && before?.state !== this.bridge.state) {
        this.log(toneOf(this.bridge.state), `git bridge ${this.bridge.state ?? '—'}${this.bridge.lastError === null ? '' : `: ${this.bridge.lastError}`}`)
      }
      this.mark('platform')
    },
    computerStatus: (t, payload) => {
      const view = readComputer(t.computer, payload)
      if (view === null) this.computers.delete(t.computer)
      else this.computers.set(t.computer, view)
      this.mark('computers')
    },
    computerMessage: (t, payload) => {
      const text = isRecord(payload) ? str(payload['message']) ?? str(payload['body']) : str(payload)
      this.log('idle', `from computer ${t.computer}: ${(text ?? JSON.stringify(payload)).slice(0, 120)}`)
    },
    // Not subscribed to: requests and traffic between the coordinator and instances.
    taskSubmit: () => undefined,
    instanceInbox: () => undefined,
    instanceReport: () => undefined,
    instanceHeartbeat: () => undefined,
    supervisorCommand: () => undefined,
    bridgeSync: () => undefined,
    computerSend: () => undefined,
  }
}
