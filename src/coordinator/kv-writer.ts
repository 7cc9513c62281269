/**
 * The write path of the JetStream KV task store (nats-kv-store.ts): each
 * write is taken synchronously and sent on, in order per key, each a
 * compare-and-set on the key's last known revision (nats-kv.ts `casPut`,
 * `casDelete`), pipelined across keys: one task change is one publish, and a
 * burst of changes to many tasks is in flight at once, not each behind the
 * previous one's acknowledgement.
 *
 * Per key, one write is in flight; writes made meanwhile wait behind it and
 * are coalesced into the latest (history is 1: the last value is the only one
 * kept, so sending the ones in between would store nothing more). `durable()`
 * settles once every write made before the call is acknowledged: a
 * generation number per write, and the smallest one still outstanding.
 *
 * A revision conflict means another writer (a newer leader) changed the key:
 * the writer is FENCED from then on, every later write throws
 * TRINITY_ERR_STORE_FENCED synchronously and `durable()` rejects with it. So
 * it is when the `fence` hook (the leader lease's local deadline) refuses:
 * before each write, each attempt, and before an acknowledgement is passed on
 * (a write stored after the lease ran out may be missing from the new
 * leader's view, so it is not vouched for).
 *
 * Any other failure (no quorum, a node down, a timeout, a reconnect) is
 * retried with backoff, 100 ms doubling to 2 s, the same message id each
 * time. What bounds the retries: the fence (with a lease, its local deadline
 * fences the writer at most one TTL after the last renewal, and the attempts
 * stop), else `close()`. Meanwhile `durable()` stays pending: an
 * acknowledgement is held, never given falsely. A retry whose earlier attempt
 * may have landed and that then meets a conflict reads the key back: holding
 * exactly the bytes it wrote (or nothing, for a delete), the write landed.
 */
import { TrinityError } from '../errors.js'
import type { KV } from 'nats'
import { casDelete, casPut, isRevisionConflict, isSequenceGone, type NatsHandle } from './nats-kv.js'

export type KvOp = { readonly kind: 'put'; readonly value: Uint8Array } | { readonly kind: 'delete' }

interface Job {
  readonly op: KvOp
  readonly msgId: string
  /** The writes this one stands for: its own, and those it replaced while waiting. */
  readonly generations: number[]
  /** An attempt failed without an answer: it may have been stored. */
  ambiguous: boolean
  attempts: number
}

interface Slot {
  readonly bucket: string
  readonly key: string
  /** The key's revision as last seen; 0 when it holds nothing. */
  revision: number
  sending: Job | undefined
  next: Job | undefined
}

interface Waiter {
  readonly upTo: number
  resolve(): void
  reject(err: unknown): void
}

export interface KvWriterOptions {
  /** Why this writer may no longer write (the lease is gone), or undefined: asked synchronously before every write. */
  refusal?: () => string | undefined
  /** Unique to this writer: its message ids must never match another writer's, or JetStream would drop its writes as duplicates. */
  writerId: string
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export class KvWriter {
  private readonly slots = new Map<string, Slot>()
  /** Generations not yet acknowledged, in increasing order (a Set keeps insertion order). */
  private readonly outstanding = new Set<number>()
  private waiters: Waiter[] = []
  private generation = 0
  private fenced: TrinityError | undefined
  private closed = false

  constructor(
    private readonly handle: NatsHandle,
    private readonly buckets: ReadonlyMap<string, KV>,
    private readonly options: KvWriterOptions,
  ) {}

  /** The revision a key was loaded at, or acknowledged at by someone else's write (the takeover). */
  seen(bucket: string, key: string, revision: number): void {
    this.slot(bucket, key).revision = revision
  }

  revisionOf(bucket: string, key: string): number {
    return this.slot(bucket, key).revision
  }

  /** Throws FENCED (or, once closed, UNAVAILABLE) when a write would be refused; changes nothing. */
  check(): void {
    if (this.fenced === undefined) {
      const refusal = this.options.refusal?.()
      if (refusal !== undefined) this.fence(refusal)
    }
    if (this.fenced !== undefined) throw this.fenced
    if (this.closed) throw new TrinityError('TRINITY_ERR_STORE_UNAVAILABLE', 'the store is closed')
  }

  /** Takes a write (after `check`), to be sent after the writes to the same key before it. */
  write(bucket: string, key: string, op: KvOp): void {
    this.check()
    const generation = ++this.generation
    this.outstanding.add(generation)
    const job: Job = { op, msgId: `${this.options.writerId}-${generation}`, generations: [generation], ambiguous: false, attempts: 0 }
    const slot = this.slot(bucket, key)
    if (slot.sending === undefined) {
      slot.sending = job
      void this.run(slot)
    } else {
      if (slot.next !== undefined) job.generations.unshift(...slot.next.generations)
      slot.next = job
    }
  }

  durable(): Promise<void> | undefined {
    if (this.fenced !== undefined) return Promise.reject(this.fenced)
    if (this.outstanding.size === 0) return undefined
    if (this.closed) return Promise.reject(new TrinityError('TRINITY_ERR_STORE_UNAVAILABLE', `closed with ${this.outstanding.size} writes not confirmed`))
    const upTo = this.generation
    return new Promise((resolve, reject) => this.waiters.push({ upTo, resolve, reject }))
  }

  /** Stops sending; what was not acknowledged is not vouched for (durable() rejects). */
  close(): void {
    if (this.closed) return
    this.closed = true
    const err = new TrinityError('TRINITY_ERR_STORE_UNAVAILABLE', `closed with ${this.outstanding.size} writes not confirmed`)
    for (const waiter of this.waiters) waiter.reject(err)
    this.waiters = []
  }

  private slot(bucket: string, key: string): Slot {
    const id = `${bucket}.${key}`
    let slot = this.slots.get(id)
    if (slot === undefined) {
      slot = { bucket, key, revision: 0, sending: undefined, next: undefined }
      this.slots.set(id, slot)
    }
    return slot
  }

  private fence(reason: string): void {
    if (this.fenced !== undefined) return
    this.fenced = new TrinityError('TRINITY_ERR_STORE_FENCED', reason)
    for (const waiter of this.waiters) waiter.reject(this.fenced)
    this.waiters = []
  }

  /** Sends the key's writes one after the other until none is left, or the writer stops. */
  private async run(slot: Slot): Promise<void> {
    for (let job = slot.sending; job !== undefined; job = slot.sending) {
      if (!(await this.send(slot, job))) return
      slot.sending = slot.next
      slot.next = undefined
      for (const g of job.generations) this.outstanding.delete(g)
      this.release()
    }
  }

  /** true once the job is stored; false when the writer stopped (fenced or closed). */
  private async send(slot: Slot, job: Job): Promise<boolean> {
    for (;;) {
      if (this.closed || this.fenced !== undefined) return false
      const refusal = this.options.refusal?.()
      if (refusal !== undefined) {
        this.fence(refusal)
        return false
      }
      try {
        if (job.op.kind === 'put') {
          slot.revision = await casPut(this.handle, slot.bucket, slot.key, job.op.value, slot.revision, job.msgId)
        } else if (slot.revision !== 0) {
          await casDelete(this.handle, slot.bucket, slot.revision)
          slot.revision = 0
        }
        return true
      } catch (err) {
        if (this.closed) return false
        if (isRevisionConflict(err) || isSequenceGone(err)) {
          const landed = job.ambiguous ? await this.landed(slot, job) : false
          if (landed === true) return true
          if (landed === false) {
            this.fence(`${slot.bucket}: key ${slot.key} was changed by another writer (expected revision ${slot.revision}): a newer leader holds the store`)
            return false
          }
        } else {
          job.ambiguous = true
        }
        await sleep(Math.min(2_000, 100 * 2 ** job.attempts++))
      }
    }
  }

  /** After a lost answer and a conflict: is what the key holds this job's own write? undefined: cannot tell yet. */
  private async landed(slot: Slot, job: Job): Promise<boolean | undefined> {
    try {
      const entry = await this.buckets.get(slot.bucket)?.get(slot.key)
      const present = entry !== null && entry !== undefined && entry.operation === 'PUT'
      if (job.op.kind === 'delete') {
        if (!present) slot.revision = entry?.revision ?? 0
        return !present
      }
      if (!present || !sameBytes(entry.value, job.op.value)) return false
      slot.revision = entry.revision
      return true
    } catch {
      return undefined
    }
  }

  /** Passes on the acknowledgements now complete, unless the fence has closed meanwhile. */
  private release(): void {
    if (this.waiters.length === 0) return
    const refusal = this.options.refusal?.()
    if (refusal !== undefined) {
      this.fence(refusal)
      return
    }
    const lowest = this.outstanding.values().next()
    const upTo = lowest.done === true ? Infinity : lowest.value - 1
    const still: Waiter[] = []
    for (const waiter of this.waiters) {
      if (waiter.upTo <= upTo) waiter.resolve()
      else still.push(waiter)
    }
    this.waiters = still
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}
