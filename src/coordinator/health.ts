/**
 * Health checks: every interval, all instances at once (a slow one never
 * delays the others). HTTP GET for instances with a health URL; for the rest
 * an MQTT ping in the inbox, answered by a heartbeat echoing its nonce.
 *
 * Hysteresis: `missesBeforeOffline` misses in a row before offline (timeout
 * until then) and `passesBeforeOnline` passes before a lost instance counts
 * as online again, so a flapping instance does not flood the bus.
 *
 * Warm-up answers: the first answer after an instance (re)starts (the first
 * check of it, the first after a miss, or the first of a new bus session)
 * pays for connection setup and the instance's cold code paths (JIT, lazy
 * imports), often 10-50 times a warm answer. It is published and judged
 * (slow means degraded) like any other, but in the rolling window it only
 * stands until the next answer replaces it: one cold start must not pin the
 * p95 of the last 50 checks for 50 intervals.
 *
 * HTTP probes use node:http (src/net/http-request.ts), not fetch, which
 * refuses ports such as 6000; a miss's reason is the real cause.
 */
import { randomUUID } from 'node:crypto'
import type { Health, HealthState } from '../contract/payloads.js'
import { HttpRequestError, httpRequestTo } from '../net/http-request.js'
import type { Config } from '../config/schema.js'
import type { Logger } from '../log.js'
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

type Probe = { kind: 'pass'; ms: number; slow: boolean } | { kind: 'erroring'; ms: number; reason: string } | { kind: 'miss'; reason: string }

/** Published times: 2 decimals, like the registry's rolling figures. */
const round2 = (ms: number): number => Math.round(ms * 100) / 100

export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined
  private readonly pending = new Map<string, (ms: number) => void>()
  private readonly checking = new Set<string>()
  /** The bus session of each instance's last answered check: a new one means a restart (a warm-up answer). */
  private readonly passSession = new Map<string, number | null>()
  /** Aborts HTTP checks in flight when the monitor stops. */
  private readonly aborter = new AbortController()
  checks = 0

  constructor(private readonly deps: HealthDeps) {}

  start(): void {
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
    if (nonce === undefined) return
    const resolve = this.pending.get(`${instanceId}:${nonce}`)
    if (resolve !== undefined) resolve(0)
  }

  async checkAll(): Promise<void> {
    await Promise.allSettled(this.deps.registry.all().map((i) => this.check(i)))
  }

  async check(instance: Instance): Promise<void> {
    if (this.checking.has(instance.id)) return
    if (instance.healthUrl === null && !instance.connected) return
    this.checking.add(instance.id)
    // A ping answer speaks for the connection it was sent on. If a Will, an offline
    // status or a new birth came while it was out, that is newer evidence: drop the answer.
    const session = instance.session
    try {
      const probe = instance.healthUrl !== null ? await this.probeHttp(instance.healthUrl) : await this.probeMqtt(instance.id)
      if (this.aborter.signal.aborted || this.deps.registry.get(instance.id) !== instance) return
      if (instance.healthUrl === null && (!instance.connected || instance.session !== session)) return
      this.apply(instance, probe)
    } finally {
      this.checking.delete(instance.id)
    }
  }

  /** Folds one probe into the instance's state, with hysteresis. */
  apply(instance: Instance, probe: Probe): void {
    const { health, now } = this.deps
    const from = instance.state
    this.checks++
    instance.checks++
    instance.lastCheckAt = now()
    let responseMs: number | null = null
    if (probe.kind === 'miss') {
      instance.passes = 0
      instance.misses++
      instance.reason = probe.reason
      if (from !== 'offline') instance.state = instance.misses >= health.missesBeforeOffline ? 'offline' : 'timeout'
    } else {
      responseMs = round2(probe.ms)
      const warmUp = instance.passes === 0 || this.passSession.get(instance.id) !== instance.session
      this.passSession.set(instance.id, instance.session)
      instance.recordResponse(probe.ms, warmUp)
      instance.misses = 0
      instance.passes++
      const recovering = from === 'offline' || from === 'timeout'
      if (from !== 'error' && (!recovering || instance.passes >= health.passesBeforeOnline)) {
        const degraded = probe.kind === 'erroring' || probe.slow
        instance.state = degraded ? 'degraded' : 'online'
        instance.reason = probe.kind === 'erroring' ? probe.reason : probe.slow ? `slow: ${Math.round(probe.ms)} ms` : null
      }
    }
    // The rolling figures ride along so a bus-only client (the dashboard) needs no polling for them.
    const { avg, p95 } = instance.responseStats()
    const record: Health = { state: instance.state, responseMs, avgMs: avg, p95Ms: p95, checkedAt: instance.lastCheckAt }
    if (instance.reason !== null) record.reason = instance.reason
    instance.recordCheck(record)
    this.deps.publishHealth(instance.id, record)
    if (from !== instance.state) {
      this.deps.log.info({ instance: instance.id, from, to: instance.state, reason: instance.reason }, 'instance health changed')
      this.deps.onStateChange(instance, from, instance.state)
    }
  }

  private async probeHttp(url: string): Promise<Probe> {
    const { timeoutMs, degradedAfterMs } = this.deps.health
    const started = performance.now()
    try {
      const response = await httpRequestTo(url, { timeoutMs, signal: this.aborter.signal })
      const ms = performance.now() - started
      if (!response.ok) return { kind: 'erroring', ms, reason: `HTTP ${response.status}` }
      return { kind: 'pass', ms, slow: ms > degradedAfterMs }
    } catch (err) {
      // The cause as Node says it: `connect ECONNREFUSED 127.0.0.1:6000`, `no answer within 5000 ms`.
      return { kind: 'miss', reason: err instanceof HttpRequestError ? err.message : String(err) }
    }
  }

  private probeMqtt(instanceId: string): Promise<Probe> {
    const { timeoutMs, degradedAfterMs } = this.deps.health
    const nonce = randomUUID()
    const key = `${instanceId}:${nonce}`
    const started = performance.now()
    return new Promise<Probe>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(key)
        resolve({ kind: 'miss', reason: `no heartbeat within ${timeoutMs} ms` })
      }, timeoutMs)
      this.pending.set(key, (code) => {
        clearTimeout(timer)
        this.pending.delete(key)
        const ms = performance.now() - started
        resolve(code < 0 ? { kind: 'miss', reason: 'stopped' } : { kind: 'pass', ms, slow: ms > degradedAfterMs })
      })
      this.deps.ping(instanceId, nonce)
    })
  }
}
