/**
 * Health checks: every interval, all instances at once (a slow one never
 * delays the others). HTTP GET for instances with a health URL; for the rest
 * an MQTT ping in the inbox, answered by a heartbeat echoing its nonce; none
 * for an `adapter: exec` instance, which the hub runs itself (online while it runs).
 *
 * What a probe result does to an instance's health (hysteresis:
 * `missesBeforeOffline` misses in a row before offline, `passesBeforeOnline`
 * passes before a lost instance counts as online again, so a flapping
 * instance does not flood the bus) is nextHealth in health-lifecycle.ts; this
 * module probes, keeps the figures, publishes and logs.
 *
 * Warm-up answers: the first answer after an instance (re)starts (the first
 * check of it, the first after a miss, or the first of a new bus session)
 * pays for connection setup and the instance's cold code paths (JIT, lazy
 * imports), often 10-50 times a warm answer. It is published and judged
 * (slow means degraded) like any other, but in the rolling window it only
 * stands until the next answer replaces it: one cold start must not pin the
 * p95 of the last 50 checks for 50 intervals. (nextHealth says which answer
 * is a warm-up one.)
 *
 * HTTP probes use node:http (src/net/http-request.ts), not fetch, which
 * refuses ports such as 6000; a miss's reason is the real cause.
 */
import { randomUUID } from 'node:crypto'
import type { HealthState } from '../contract/constants.js'
import type { Health } from '../contract/payloads/instance.js'
import { HttpRequestError, httpRequestTo } from '../net/http-request.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
import { nextHealth, type ProbeEvent } from './health-lifecycle.js'
import type { Instance, Registry } from './registry.js'

export interface HealthDeps {
  registry: Registry
  health: Config['health']
  log: Logger
  now: () => number
  ping: (instanceId: string, nonce: string) => void
  publishHealth: (instanceId: string, health: Health) => void
  onStateChange: (instance: Instance, from: HealthState, to: HealthState) => void
}

/** Published times: 2 decimals, like the registry's rolling figures. */
const round2 = (ms: number): number => Math.round(ms * 100) / 100

export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined
  private readonly pending = new Map<string, (ms: number) => void>()
  private readonly checking = new Set<string>()
  /** Aborts HTTP checks in flight when the monitor stops. */
  /** Aborted by stop(): what a round learns after it is dropped; start() makes a new one. */
  private aborter = new AbortController()
  checks = 0

  constructor(private readonly deps: HealthDeps) {}

  /** Also after stop(): checks resume where they left off. */
  start(): void {
    if (this.timer !== undefined) return
    if (this.aborter.signal.aborted) this.aborter = new AbortController()
    // A first round at once, so health is on the bus from the start.
    void this.checkAll()
    this.timer = setInterval(() => void this.checkAll(), this.deps.health.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.aborter.abort()
    for (const resolve of this.pending.values()) resolve(-1)
    this.pending.clear()
  }

  /** A heartbeat arrived; if it answers a ping, that ping's time is the response time. */
  heartbeat(instanceId: string, nonce: string | undefined): void {
    const instance = this.deps.registry.get(instanceId)
    if (instance !== undefined) instance.lastSeenAt = this.deps.now()
    // A disconnected instance that still heartbeats may be alive under a late Will:
    // a ping sent now, and answered, proves it (nextHealth reconnects it).
    if (nonce === undefined) {
      if (instance !== undefined && !instance.connected && instance.healthUrl === null) void this.check(instance, true)
      return
    }
    const resolve = this.pending.get(`${instanceId}:${nonce}`)
    if (resolve !== undefined) resolve(0)
  }

  async checkAll(): Promise<void> {
    await Promise.allSettled(this.deps.registry.all().map((i) => this.check(i)))
  }

  /** `revive`: ping an instance that is not connected (it heartbeats; see heartbeat()). */
  async check(instance: Instance, revive = false): Promise<void> {
    if (this.checking.has(instance.id)) return
    // The hub's own runner (adapter exec): up while the hub is, nothing to probe (HOSTED_HEALTH).
    if (instance.adapter === 'exec') return
    if (instance.healthUrl === null && !instance.connected && !revive) return
    this.checking.add(instance.id)
    // A ping answer speaks for the connection it was sent on (nextHealth drops it
    // when a Will, an offline status or a new birth came while it was out).
    const session = instance.session
    const connected = instance.connected
    // This round's: a probe that outlives a stop() (and a start() after it) stays dropped.
    const { signal } = this.aborter
    try {
      const probe = instance.healthUrl !== null ? await this.probeHttp(instance.healthUrl, signal) : { ...(await this.probeMqtt(instance.id)), pingSession: session, pingConnected: connected }
      if (signal.aborted || this.deps.registry.get(instance.id) !== instance) return
      this.apply(instance, probe)
    } finally {
      this.checking.delete(instance.id)
    }
  }

  /** Folds one probe into the instance's health (nextHealth), then records, publishes and logs it. */
  apply(instance: Instance, probe: ProbeEvent): void {
    const step = nextHealth(instance.health, probe, this.deps.health)
    if (step.stale) return
    const from = step.from
    this.checks++
    instance.checks++
    instance.lastCheckAt = this.deps.now()
    instance.health = step.next
    let responseMs: number | null = null
    if (probe.kind !== 'probe-miss') {
      responseMs = round2(probe.ms)
      instance.recordResponse(probe.ms, step.warmUp)
    }
    // The rolling figures ride along so a bus-only client (the dashboard) needs no polling for them.
    const { avg, p95 } = instance.responseStats()
    const record: Health = { state: instance.state, responseMs, avgMs: avg, p95Ms: p95, checkedAt: instance.lastCheckAt }
    if (instance.reason !== null) record.reason = instance.reason
    instance.recordCheck(record)
    this.deps.publishHealth(instance.id, record)
    if (step.changed) {
      this.deps.log.info({ instance: instance.id, from, to: instance.state, reason: instance.reason }, 'instance health changed')
      this.deps.onStateChange(instance, from, instance.state)
    }
  }

  private async probeHttp(url: string, signal: AbortSignal): Promise<ProbeEvent> {
    const { timeoutMs, degradedAfterMs } = this.deps.health
    const started = performance.now()
    try {
      const response = await httpRequestTo(url, { timeoutMs, signal })
      const ms = performance.now() - started
      if (!response.ok) return { kind: 'probe-erroring', ms, reason: `HTTP ${response.status}` }
      return answered(ms, degradedAfterMs)
    } catch (err) {
      // The cause as Node says it: `connect ECONNREFUSED 127.0.0.1:6000`, `no answer within 5000 ms`.
      return { kind: 'probe-miss', reason: err instanceof HttpRequestError ? err.message : String(err) }
    }
  }

  private probeMqtt(instanceId: string): Promise<ProbeEvent> {
    const { timeoutMs, degradedAfterMs } = this.deps.health
    const nonce = randomUUID()
    const key = `${instanceId}:${nonce}`
    const started = performance.now()
    return new Promise<ProbeEvent>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(key)
        resolve({ kind: 'probe-miss', reason: `no heartbeat within ${timeoutMs} ms` })
      }, timeoutMs)
      this.pending.set(key, (code) => {
        clearTimeout(timer)
        this.pending.delete(key)
        const ms = performance.now() - started
        resolve(code < 0 ? { kind: 'probe-miss', reason: 'stopped' } : answered(ms, degradedAfterMs))
      })
      this.deps.ping(instanceId, nonce)
    })
  }
}

/** An answer in time, or slower than `health.degradedAfter`. */
function answered(ms: number, degradedAfterMs: number): ProbeEvent {
  return ms > degradedAfterMs ? { kind: 'probe-slow', ms } : { kind: 'probe-pass', ms }
}
