/**
 * The instance registry: instances from config plus those that join by
 * publishing a birth status. Holds each instance's health record (how it
 * changes is health-lifecycle.ts: birth / Last Will guarded by a session
 * number, probes with hysteresis, the supervisor's process state), response
 * times and load.
 */
import type { InstanceView } from '../contract/http.js'
import type { HealthState } from '../contract/constants.js'
import type { Health, InstanceStatus } from '../contract/payloads/instance.js'
import type { InstanceConfig } from '../config/schema.js'
import type { RememberedBirth } from './task-store.js'
import { HOSTED_HEALTH, INITIAL_HEALTH, nextHealth, shownHealth, type HealthRecord, type InstanceProcess, type StatusEvent } from './health-lifecycle.js'

export type { InstanceProcess } from './health-lifecycle.js'
export type { InstanceView }

const RESPONSE_WINDOW = 50
/** Health checks kept per instance: the dashboard's timeline shows the last 40, from before the page opened too. */
const RECENT_CHECKS = 40

export class Instance {
  readonly id: string
  name: string
  role: string
  capabilities: string[]
  port: number | null
  healthUrl: string | null
  /** Set for `adapter: http` instances: tasks go by POST {url}/task instead of the inbox. */
  readonly httpUrl: string | null
  /** How tasks reach it: its inbox on the bus, POST {url}/task, or the hub runs its command (exec). */
  readonly adapter: InstanceView['adapter']
  readonly source: 'config' | 'joined'
  /** Replaced, never edited, by each step of nextHealth (health-lifecycle.ts). */
  health: HealthRecord
  concurrency: number
  /** leg keys (`taskId#leg`) this instance holds. */
  readonly inFlight = new Set<string>()
  checks = 0
  lastCheckAt: number | null = null
  lastSeenAt: number | null = null
  private readonly responses: number[] = []
  private readonly checkRecords: Health[] = []
  private provisional = false

  constructor(config: InstanceConfig, source: 'config' | 'joined', defaultConcurrency: number) {
    this.id = config.id
    this.name = config.name ?? config.id
    this.role = config.role ?? config.id
    this.capabilities = [...(config.capabilities ?? [])]
    this.port = config.port ?? null
    this.httpUrl = config.adapter === 'http' && config.url !== undefined ? config.url.replace(/\/$/, '') : null
    this.healthUrl = config.healthUrl ?? (this.httpUrl === null ? null : `${this.httpUrl}/health`)
    this.source = source
    this.concurrency = config.concurrency ?? defaultConcurrency
    this.adapter = config.adapter ?? 'mqtt'
    this.health = this.adapter === 'exec' ? HOSTED_HEALTH : INITIAL_HEALTH
  }

  // The health record's fields, read where the router and the scheduler always read them.
  // Staging a state or draining by hand is for router tests; the hub moves health only through nextHealth.
  get state(): HealthState { return this.health.state }
  set state(state: HealthState) { this.health = { ...this.health, state } }
  get draining(): boolean { return this.health.draining }
  set draining(draining: boolean) { this.health = { ...this.health, draining } }
  get connected(): boolean { return this.health.connected }
  get session(): number | null { return this.health.session }
  get misses(): number { return this.health.misses }
  get passes(): number { return this.health.passes }
  get reason(): string | null { return this.health.reason }
  get process(): InstanceProcess | null { return this.health.process }
  /** The supervisor's status names this instance's process: a `process` event. */
  set process(process: InstanceProcess | null) { this.health = nextHealth(this.health, { kind: 'process', process }).next }

  /** May receive new work: online (or degraded) and not full. */
  get available(): boolean {
    return (this.state === 'online' || this.state === 'degraded') && !this.draining && this.inFlight.size < this.concurrency
  }

  /** A warm-up time (see health.ts) is replaced by the next one instead of staying in the window. */
  recordResponse(ms: number, warmUp = false): void {
    if (this.provisional) this.responses.pop()
    this.provisional = warmUp
    this.responses.push(ms)
    if (this.responses.length > RESPONSE_WINDOW) this.responses.shift()
  }

  recordCheck(record: Health): void {
    this.checkRecords.push(record)
    if (this.checkRecords.length > RECENT_CHECKS) this.checkRecords.shift()
  }

  get averageResponseMs(): number | null {
    if (this.responses.length === 0) return null
    return this.responses.reduce((a, b) => a + b, 0) / this.responses.length
  }

  /** Last, average and 95th percentile of the last RESPONSE_WINDOW answers, in ms (2 decimals). */
  responseStats(): InstanceView['responseMs'] {
    const sorted = [...this.responses].sort((a, b) => a - b)
    const p95 = sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? null)
    const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 100) / 100)
    return { last: round(this.responses.at(-1) ?? null), avg: round(this.averageResponseMs), p95: round(p95) }
  }

  view(): InstanceView {
    const shown = shownHealth(this.health)
    return {
      id: this.id,
      name: this.name,
      role: this.role,
      capabilities: this.capabilities,
      port: this.port,
      healthUrl: this.healthUrl,
      adapter: this.adapter,
      source: this.source,
      connected: this.connected,
      session: this.session,
      state: shown.state,
      concurrency: this.concurrency,
      inFlight: this.inFlight.size,
      responseMs: this.responseStats(),
      checks: this.checks,
      lastCheckAt: this.lastCheckAt,
      lastSeenAt: this.lastSeenAt,
      reason: shown.reason,
      process: this.process,
      recentChecks: [...this.checkRecords],
    }
  }
}

/**
 * `unknown-session`: an offline, error or draining status for a session newer than the last birth's: refused.
 * `full`: a birth from a new id while `limits.maxJoinedInstances` have joined: refused.
 */
export type StatusOutcome = 'joined' | 'online' | 'offline' | 'error' | 'stale' | 'unchanged' | 'unknown-session' | 'full'

export class Registry {
  private readonly instances = new Map<string, Instance>()
  /** `all()`, kept until an instance is added or forgotten: the scheduler asks on every dispatch (issue #12). */
  private listed: readonly Instance[] | undefined

  /**
   * `maxJoined`: how many instances not in the config may be known at once.
   * Each birth on a new id used to add one for good (issue #14: 20,000 births
   * on distinct ids, 20,000 entries); `health.forgetAfter` expires the silent
   * ones, this bounds the rest. Configured instances are never counted.
   */
  constructor(configured: readonly InstanceConfig[], private readonly defaultConcurrency: number, readonly maxJoined = Number.POSITIVE_INFINITY) {
    for (const config of configured) this.add(new Instance(config, 'config', defaultConcurrency))
  }

  get(id: string): Instance | undefined {
    return this.instances.get(id)
  }

  /** Every instance, in the order they became known. The same array until one is added or forgotten: not to be changed. */
  all(): readonly Instance[] {
    this.listed ??= [...this.instances.values()]
    return this.listed
  }

  private add(instance: Instance): void {
    this.instances.set(instance.id, instance)
    this.listed = undefined
  }

  /** Instances a route target names: by id, or else every instance of that role or with that capability. */
  matching(target: string): Instance[] {
    const byId = this.instances.get(target)
    if (byId !== undefined) return [byId]
    return this.all().filter((i) => i.role === target || i.capabilities.includes(target))
  }

  /** Instances that joined by birth, known now. */
  get joinedCount(): number {
    let count = 0
    for (const instance of this.instances.values()) if (instance.source === 'joined') count++
    return count
  }

  /**
   * The last births a previous run of the hub saw (task-store.ts): each instance's
   * session is known again, and a joined one is known again, offline until
   * evidence of life (a heartbeat, then an answered ping: health.ts) or a
   * birth. Without this, a restarted hub had no birth to bound a status by:
   * a forged retained offline with a huge session, the first status it saw,
   * kept a joined instance unknown (its heartbeats ignored) until its next
   * birth, which an instance that stays connected never sends (issue #14).
   */
  restore(births: readonly RememberedBirth[], now: number): void {
    for (const birth of births) {
      let instance = this.instances.get(birth.id)
      if (instance?.adapter === 'exec') continue
      if (instance === undefined) {
        if (this.joinedCount >= this.maxJoined) continue
        const { profile } = birth
        instance = new Instance({ id: birth.id, ...(profile.capabilities === undefined ? {} : { capabilities: profile.capabilities }) }, 'joined', this.defaultConcurrency)
        if (profile.role !== undefined) instance.role = profile.role
        if (profile.name !== undefined) instance.name = profile.name
        if (profile.concurrency !== undefined) instance.concurrency = profile.concurrency
        if (profile.port !== undefined) instance.port = profile.port
        // `health.forgetAfter` counts from the restart: a live one heartbeats before then.
        instance.lastSeenAt = now
        this.add(instance)
      }
      instance.health = { ...instance.health, session: birth.session }
    }
  }

  /** Removes a joined instance (DELETE /instances/:id, or expiry); the caller checks it may. */
  forget(id: string): boolean {
    this.listed = undefined
    return this.instances.delete(id)
  }

  /**
   * Joined instances offline, holding nothing, and not heard from (no birth,
   * Will, heartbeat) for `afterMs`: what the periodic expiry forgets.
   */
  expired(now: number, afterMs: number): Instance[] {
    return this.all().filter((i) => i.source === 'joined' && i.state === 'offline' && i.inFlight.size === 0 && (i.lastSeenAt ?? 0) <= now - afterMs)
  }

  /**
   * Applies a birth, Will, error or draining status (health-lifecycle.ts: one
   * whose session is older than the current one is stale and ignored, the
   * Sparkplug bdSeq pitfall). A birth or draining status also carries the
   * instance's profile.
   *
   * Only a birth (`online`) opens a session. Any other status speaks for a
   * session a birth opened: one for a newer session than the last birth's is
   * forged or lost its way, and adopted, its number would make every real
   * birth after it stale (issue #14: an offline status with session
   * 99999999999999 locked an instance out until the hub restarted; an `error`
   * or `draining` one did the same, and took it out of routing meanwhile).
   * Refused while a birth is known (also one a previous run saw: `restore`);
   * before any, its state applies but its number is not kept.
   */
  applyStatus(id: string, status: InstanceStatus, now: number): StatusOutcome {
    let instance = this.instances.get(id)
    let joined = false
    // The hub runs an exec instance itself: a birth or Will for its id is not its own.
    if (instance?.adapter === 'exec') return 'stale'
    if (instance === undefined) {
      if (status.state !== 'online') return 'stale'
      if (this.joinedCount >= this.maxJoined) return 'full'
      instance = new Instance({ id, ...(status.capabilities ? { capabilities: status.capabilities } : {}) }, 'joined', this.defaultConcurrency)
      this.add(instance)
      joined = true
    }
    const bornSession = instance.session
    const beyondBirth = status.state !== 'online' && (bornSession === null || status.session > bornSession)
    if (beyondBirth && bornSession !== null) return 'unknown-session'
    const step = nextHealth(instance.health, statusEvent(status))
    if (step.stale) return 'stale'
    instance.lastSeenAt = now
    instance.health = beyondBirth ? { ...step.next, session: bornSession } : step.next
    switch (status.state) {
      case 'online':
      case 'draining':
        if (status.capabilities !== undefined) instance.capabilities = [...status.capabilities]
        if (status.role !== undefined) instance.role = status.role
        if (status.name !== undefined) instance.name = status.name
        if (status.concurrency !== undefined) instance.concurrency = status.concurrency
        if (status.port !== undefined) instance.port = status.port
        return joined ? 'joined' : step.cameUp ? 'online' : 'unchanged'
      case 'offline':
        return 'offline'
      case 'error':
        return 'error'
    }
  }
}

function statusEvent(status: InstanceStatus): StatusEvent {
  switch (status.state) {
    case 'online':
      return { kind: 'birth', session: status.session }
    case 'draining':
      return { kind: 'draining', session: status.session }
    case 'offline':
      return { kind: 'will', session: status.session }
    case 'error':
      return { kind: 'error', session: status.session, error: status.error }
  }
}
