/**
 * The instance registry: instances from config plus those that join by
 * publishing a birth status. Tracks connection (birth / Last Will, guarded by
 * a session number), health with hysteresis, response times and load.
 */
import type { Health, HealthState, InstanceStatus, SupervisedChild } from '../contract/payloads.js'
import type { InstanceConfig } from '../config/schema.js'

const RESPONSE_WINDOW = 50
/** Health checks kept per instance: the dashboard's timeline shows the last 40, from before the page opened too. */
export const RECENT_CHECKS = 40

export interface InstanceView {
  id: string
  name: string
  role: string
  capabilities: string[]
  port: number | null
  healthUrl: string | null
  source: 'config' | 'joined'
  connected: boolean
  session: number | null
  state: HealthState
  concurrency: number
  inFlight: number
  responseMs: { last: number | null; avg: number | null; p95: number | null }
  checks: number
  lastCheckAt: number | null
  lastSeenAt: number | null
  reason: string | null
  /** The supervisor's view of its process, when a supervisor runs it. */
  process: InstanceProcess | null
  /** The last RECENT_CHECKS health records, oldest first, as published on `health/{id}`. */
  recentChecks: Health[]
}

export interface InstanceProcess {
  state: SupervisedChild['state']
  pid: number | null
  restarts: number
  reason: string | null
}

export class Instance {
  readonly id: string
  name: string
  role: string
  capabilities: string[]
  port: number | null
  healthUrl: string | null
  /** Set for `adapter: http` instances: tasks go by POST {url}/task instead of the inbox. */
  readonly httpUrl: string | null
  readonly source: 'config' | 'joined'
  /** Birth seen and no Will since. */
  connected = false
  /** Finishing its work, taking no more. */
  draining = false
  session: number | null = null
  state: HealthState = 'offline'
  concurrency: number
  /** leg keys (`taskId#leg`) this instance holds. */
  readonly inFlight = new Set<string>()
  misses = 0
  passes = 0
  checks = 0
  lastCheckAt: number | null = null
  lastSeenAt: number | null = null
  reason: string | null = null
  process: InstanceProcess | null = null
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
  }

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
    return {
      id: this.id,
      name: this.name,
      role: this.role,
      capabilities: this.capabilities,
      port: this.port,
      healthUrl: this.healthUrl,
      source: this.source,
      connected: this.connected,
      session: this.session,
      // A crash loop outranks what health checks of a dead process say.
      state: this.process?.state === 'error' ? 'error' : this.state,
      concurrency: this.concurrency,
      inFlight: this.inFlight.size,
      responseMs: this.responseStats(),
      checks: this.checks,
      lastCheckAt: this.lastCheckAt,
      lastSeenAt: this.lastSeenAt,
      reason: this.process?.state === 'error' ? this.process.reason : this.reason,
      process: this.process,
      recentChecks: [...this.checkRecords],
    }
  }
}

export type StatusOutcome = 'joined' | 'online' | 'offline' | 'error' | 'stale' | 'unchanged'

export class Registry {
  private readonly instances = new Map<string, Instance>()

  constructor(configured: readonly InstanceConfig[], private readonly defaultConcurrency: number) {
    for (const config of configured) this.instances.set(config.id, new Instance(config, 'config', defaultConcurrency))
  }

  get(id: string): Instance | undefined {
    return this.instances.get(id)
  }

  all(): Instance[] {
    return [...this.instances.values()]
  }

  /** Instances a route target names: by id, or else every instance of that role or with that capability. */
  matching(target: string): Instance[] {
    const byId = this.instances.get(target)
    if (byId !== undefined) return [byId]
    return this.all().filter((i) => i.role === target || i.capabilities.includes(target))
  }

  /** Removes a joined instance (DELETE /instances/:id, or expiry); the caller checks it may. */
  forget(id: string): boolean {
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
   * Applies a birth or Will. A Will (offline) whose session is older than the
   * current one is stale: it belongs to a connection that a new birth already
   * replaced (the Sparkplug bdSeq pitfall), and is ignored.
   */
  applyStatus(id: string, status: InstanceStatus, now: number): StatusOutcome {
    let instance = this.instances.get(id)
    let joined = false
    if (instance === undefined) {
      if (status.state !== 'online') return 'stale'
      instance = new Instance({ id, ...(status.capabilities ? { capabilities: status.capabilities } : {}) }, 'joined', this.defaultConcurrency)
      this.instances.set(id, instance)
      joined = true
    }
    if (instance.session !== null && status.session < instance.session) return 'stale'
    instance.lastSeenAt = now
    switch (status.state) {
      case 'online':
      case 'draining': {
        const wasUsable = instance.connected && instance.state !== 'offline'
        instance.session = status.session
        instance.connected = true
        if (status.capabilities !== undefined) instance.capabilities = [...status.capabilities]
        if (status.role !== undefined) instance.role = status.role
        if (status.name !== undefined) instance.name = status.name
        if (status.concurrency !== undefined) instance.concurrency = status.concurrency
        if (status.port !== undefined) instance.port = status.port
        // A birth is proof of life: online at once, without waiting for passes.
        instance.state = 'online'
        instance.draining = status.state === 'draining'
        instance.misses = 0
        instance.reason = status.state === 'draining' ? 'draining' : null
        return joined ? 'joined' : wasUsable ? 'unchanged' : 'online'
      }
      case 'offline':
        instance.session = status.session
        instance.connected = false
        instance.draining = false
        instance.state = 'offline'
        instance.reason = 'last will or offline status'
        return 'offline'
      case 'error':
        instance.session = status.session
        instance.connected = true
        instance.state = 'error'
        instance.reason = status.error ?? 'instance reported an error'
        return 'error'
    }
  }
}
