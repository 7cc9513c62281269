/**
 * The leader lease of active/standby hubs (issue #13): one key, `leader`, in
 * the bucket `{prefix}_lease`, whose max_age is the TTL. Its decisions (when
 * it is held, renewed, lost) are lease-lifecycle.ts's; this module does the
 * I/O and the timers.
 * - acquire: a CAS create (revision 0, or the revision of a released lease's
 *   tombstone), which succeeds only while no live holder has the key. The
 *   revision it gets is the hub's epoch, stamped on every task it writes.
 * - renew: `update(key, value, revision)` a third of the TTL after the last
 *   renewal was sent; the value names the holder (hub id, HTTP URL), for a
 *   standby to redirect writes to.
 * - lost: a refused renewal (the revision moved, the key expired) or the
 *   local monotonic deadline passed without an answered renewal. `lost`
 *   settles once, with the reason; renewals stop.
 * - standby: `acquire()` watches the key (a release is a tombstone, seen at
 *   once) and tries the create every third of the TTL (an expiry under
 *   max_age is not announced to watchers).
 *
 * The lease is the task store's fence (nats-kv-store.ts `StoreFence`):
 * `refusal()` compares performance.now() with the deadline, so a SIGSTOPped
 * leader that wakes up refuses its next write before any round trip, whatever
 * its timers do first.
 */
import { randomUUID } from 'node:crypto'
import type { KV } from 'nats'
import { STANDBY, leaseTiming, nextLease, refusalAt, type LeaseEvent, type LeaseState, type LeaseTiming } from './lease-lifecycle.js'
import { casPut, casTombstone, connectNats, isRevisionConflict, openBucket, type NatsHandle, type NatsLogin } from './nats-kv.js'
import type { StoreFence } from './nats-kv-store.js'

export interface LeaseHolder {
  /** The holder's hub id. */
  readonly hub: string
  /** Its HTTP URL: where a standby sends writes. */
  readonly url: string
}

export interface LeaderLeaseOptions {
  servers: readonly string[]
  login?: NatsLogin | null
  /** The bucket's name prefix, the task store's: nats-kv.ts `bucketPrefixFor(hub.topicPrefix)`. */
  prefix: string
  ttlMs: number
  holder: LeaseHolder
  /** Copies of the lease bucket: 3 by default. */
  replicas?: number
}

const LEASE_KEY = 'leader'

export class LeaderLease implements StoreFence {
  private state: LeaseState = STANDBY
  private readonly timing: LeaseTiming
  private renewTimer: NodeJS.Timeout | undefined
  private deadlineTimer: NodeJS.Timeout | undefined
  private closed = false
  /** Makes this hub's message ids its own. */
  private readonly nonce = randomUUID()
  /** A renewal left unanswered: its retry carries the same message id, and counts from the first send. */
  private unanswered: { revision: number; sentAt: number } | undefined
  private settleLost!: (reason: string) => void
  /** Settles once, with the reason, when a held lease is lost (or released). */
  readonly lost: Promise<string>

  private constructor(
    private readonly handle: NatsHandle,
    private readonly kv: KV,
    private readonly bucket: string,
    private readonly holder: LeaseHolder,
    ttlMs: number,
  ) {
    this.timing = leaseTiming(ttlMs)
    this.lost = new Promise((resolve) => { this.settleLost = resolve })
  }

  static async open(options: LeaderLeaseOptions): Promise<LeaderLease> {
    // A request must be answered well within a renewal period, so that a retry fits before the deadline.
    const handle = await connectNats({ servers: options.servers, login: options.login, name: `trinity-lease-${options.holder.hub}`, timeoutMs: Math.max(250, Math.round(options.ttlMs / 4)) })
    try {
      const bucket = `${options.prefix}_lease`
      const kv = await openBucket(handle, bucket, { replicas: options.replicas ?? 3, ttlMs: options.ttlMs })
      return new LeaderLease(handle, kv, bucket, options.holder, options.ttlMs)
    } catch (err) {
      await handle.nc.close()
      throw err
    }
  }

  /** The revision at acquisition; 0 before. */
  get epoch(): number {
    return this.state.kind === 'standby' ? 0 : this.state.epoch
  }

  get held(): boolean {
    return this.refusal() === undefined
  }

  refusal(): string | undefined {
    return refusalAt(this.state, performance.now())
  }

  /** One try: true when this hub now holds the lease. */
  async tryAcquire(): Promise<boolean> {
    if (this.closed || this.state.kind !== 'standby') return this.held
    for (let revision = 0, tries = 0; tries < 2; tries++) {
      const sentAt = performance.now()
      try {
        // A fresh message id each time: a duplicate's answer would not say when the first create was stored.
        const got = await casPut(this.handle, this.bucket, LEASE_KEY, this.value(), revision, randomUUID())
        this.apply({ kind: 'acquired', revision: got, sentAt, at: performance.now() })
        return this.held
      } catch (err) {
        if (!isRevisionConflict(err)) return false
        // A released lease leaves a tombstone: the create is a CAS on its revision.
        const entry = await this.kv.get(LEASE_KEY).catch(() => null)
        if (entry === null || entry.operation === 'PUT') return false
        revision = entry.revision
      }
    }
    return false
  }

  /** A standby's wait: resolves once this hub holds the lease (or rejects if closed first). */
  async acquire(): Promise<void> {
    const { KvWatchInclude } = await import('nats')
    const watch = await this.kv.watch({ key: LEASE_KEY, include: KvWatchInclude.UpdatesOnly })
    let wake: (() => void) | undefined
    void (async () => {
      for await (const entry of watch) if (entry.operation !== 'PUT') wake?.()
    })().catch(() => undefined)
    try {
      while (!(await this.tryAcquire())) {
        if (this.closed) throw new Error('the lease was closed while waiting for it')
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.timing.ttlMs / 3)
          wake = () => { clearTimeout(timer); resolve() }
        })
        wake = undefined
      }
    } finally {
      watch.stop()
    }
  }

  /** Who holds the lease now, as the key says; undefined when nobody does. */
  async current(): Promise<(LeaseHolder & { revision: number }) | undefined> {
    const entry = await this.kv.get(LEASE_KEY)
    if (entry === null || entry.operation !== 'PUT') return undefined
    const value = entry.json<LeaseHolder>()
    return { hub: value.hub, url: value.url, revision: entry.revision }
  }

  /** Steps down: no more renewals, and a tombstone (CAS on the last revision) for a standby to see at once. */
  async release(): Promise<void> {
    const state = this.state
    this.apply({ kind: 'released', at: performance.now() })
    if (state.kind === 'held') await casTombstone(this.handle, this.bucket, LEASE_KEY, state.revision).catch(() => undefined)
  }

  async close(): Promise<void> {
    this.closed = true
    this.apply({ kind: 'released', at: performance.now() })
    this.clearTimers()
    if (!this.handle.nc.isClosed()) await this.handle.nc.close()
  }

  private value(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ hub: this.holder.hub, url: this.holder.url, at: Date.now() }))
  }

  private apply(event: LeaseEvent): void {
    const before = this.state
    this.state = nextLease(before, event, this.timing)
    if (this.state.kind === 'lost') {
      this.clearTimers()
      if (before.kind === 'held') this.settleLost(this.state.reason)
      return
    }
    if (this.state.kind === 'held' && this.state !== before) this.schedule(this.state)
  }

  private schedule(state: LeaseState & { kind: 'held' }): void {
    this.clearTimers()
    const now = performance.now()
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(0, state.renewAt - now))
    this.deadlineTimer = setTimeout(() => this.apply({ kind: 'tick', at: performance.now() }), Math.max(0, state.deadline - now))
  }

  private clearTimers(): void {
    clearTimeout(this.renewTimer)
    clearTimeout(this.deadlineTimer)
  }

  private async renew(): Promise<void> {
    const state = this.state
    if (state.kind !== 'held') return
    // The clock is read for the tick first: a hub that slept through its deadline is lost before it sends.
    this.apply({ kind: 'tick', at: performance.now() })
    if (this.state.kind !== 'held') return
    // A retry may be answered with the first attempt's acknowledgement (the same message id, a
    // duplicate), stored at any time after that attempt was sent: the deadline counts from then.
    const sentAt = this.unanswered?.revision === state.revision ? this.unanswered.sentAt : performance.now()
    try {
      const revision = await casPut(this.handle, this.bucket, LEASE_KEY, this.value(), state.revision, `${this.nonce}-renew-${state.revision}`)
      this.unanswered = undefined
      this.apply({ kind: 'renewed', revision, sentAt, at: performance.now() })
    } catch (err) {
      if (isRevisionConflict(err)) {
        this.apply({ kind: 'refused', at: performance.now(), why: (err as Error).message })
      } else {
        this.unanswered = { revision: state.revision, sentAt }
        this.apply({ kind: 'unanswered', at: performance.now() })
      }
    }
  }
}
