/**
 * The replicated task store (task-store.ts) on NATS JetStream KV (issue #13):
 * three buckets, `{prefix}_tasks`, `{prefix}_messages` and `{prefix}_births`,
 * file storage, `replicas` copies (3 by default: one node may be lost), one
 * value per key. Keys are ids, encoded by nats-kv.ts `keyFor`.
 *
 * `open` loads every key into an in-memory view; reads are served from it,
 * with the order and filters of the SQLite store (the conformance suite
 * checks them). Writes change the view at once and go out through the
 * KvWriter (kv-writer.ts): compare-and-set per key, pipelined across keys;
 * `durable()` says when they are stored by a quorum.
 *
 * Values are JSON. A task's carries the writer's epoch (`e`, the leader
 * lease's revision at acquisition; 0 without a lease), its first-seen order
 * (`s`, what SQLite's rowid gives: ties in the listings), the columns it is
 * listed by (`k`), its summary (`m`) and its record (`r`); the summary and
 * record are spliced in as the caller serialised them.
 *
 * The message log is a bucket too, a key per message id, rather than a
 * stream: the key makes the id unique on the server as well (a second
 * `create` of one id is refused, across hubs and restarts, where a stream's
 * Nats-Msg-Id dedupe lasts its duplicate window only), loading it is the same
 * one watch as the other buckets, and pruning removes a message's one
 * revision, leaving no tombstone. Its arrival order is stored (`s`), since
 * writes to different keys are acknowledged in any order.
 *
 * A store opened with a `fence` (the leader lease) is a leader taking over:
 * it refuses to open if a task was already written under a newer epoch, and
 * rewrites each unfinished task once with its own epoch before it returns, so
 * a write from the previous leader still in flight fails its CAS (its
 * revisions are stale) instead of overwriting the new leader's state. Every
 * later write asks the fence first (synchronously: a leader whose lease ran
 * out while it was paused cannot write before any round trip). Multi-key
 * transactions do not exist on 2.9: `transaction` writes one by one.
 */
import { randomUUID } from 'node:crypto'
import type { KV, KvEntry } from 'nats'
import { ACTIVE_TASK_STATES } from '../contract/constants.js'
import type { TaskRecord, TaskSummary } from '../contract/payloads/task.js'
import type { Message } from '../contract/payloads/message.js'
import { summarizeTask, type ContentFacts } from '../contract/task-summary.js'
import { TrinityError } from '../errors.js'
import { KvWriter } from './kv-writer.js'
import { casPut, connectNats, idFor, isRevisionConflict, keyFor, openBucket, streamFor, type NatsHandle, type NatsLogin } from './nats-kv.js'
import type { RememberedBirth, TaskFilter, TaskKey, TaskStore } from './task-store.js'

/** What the store asks the leader lease (leader-lease.ts implements it). */
export interface StoreFence {
  /** Stamped on every task this store writes. */
  readonly epoch: number
  /** Why this hub may no longer write, or undefined while it may. Synchronous, and cheap: asked before every write. */
  refusal(): string | undefined
}

export interface NatsKvStoreOptions {
  /** nats:// URLs of the cluster's nodes; the client moves between them. */
  servers: readonly string[]
  login?: NatsLogin | null
  /** The buckets' name prefix: nats-kv.ts `bucketPrefixFor(hub.topicPrefix)`. */
  prefix: string
  /** Copies of each bucket: 3 by default; 1 for a single server. */
  replicas?: number
  fence?: StoreFence
  /** How long one JetStream request waits for its answer; a write without one is retried. */
  requestTimeoutMs?: number
}

interface TaskEntry {
  key: TaskKey
  json: string
  summary: string
  seq: number
}

interface StoredTask {
  e: number
  s: number
  k: TaskKey
  m: unknown
  r: unknown
}

interface Logged {
  message: Message
  seq: number
}

/** SQLite's pruneFinished deletes these states (not `dead`); this store does the same. */
const PRUNABLE = new Set(['completed', 'failed', 'cancelled'])

const encoder = new TextEncoder()

/** How long open waits for a bucket's load to catch up with its stream. */
const LOAD_BOUND_MS = 30_000

export class NatsKvStore implements TaskStore {
  private readonly tasks = new Map<string, TaskEntry>()
  /** In arrival order (a Map keeps insertion order). */
  private readonly messages = new Map<string, Logged>()
  private readonly birthsById = new Map<string, RememberedBirth>()
  private seq = 0
  /** The newest epoch a loaded task was written under. */
  private newestEpoch = 0

  private constructor(
    private readonly handle: NatsHandle,
    private readonly writer: KvWriter,
    private readonly names: { tasks: string; messages: string; births: string },
    private readonly epoch: number,
  ) {}

  static async open(options: NatsKvStoreOptions): Promise<NatsKvStore> {
    const replicas = options.replicas ?? 3
    const handle = await connectNats({ servers: options.servers, login: options.login, name: `trinity-store-${options.prefix}`, timeoutMs: options.requestTimeoutMs ?? 5_000 })
    try {
      const names = { tasks: `${options.prefix}_tasks`, messages: `${options.prefix}_messages`, births: `${options.prefix}_births` }
      const buckets = new Map<string, KV>()
      for (const name of Object.values(names)) buckets.set(name, await openBucket(handle, name, { replicas }))
      const fence = options.fence
      const writer = new KvWriter(handle, buckets, { writerId: randomUUID(), ...(fence === undefined ? {} : { refusal: () => fence.refusal() }) })
      const store = new NatsKvStore(handle, writer, names, fence?.epoch ?? 0)
      for (const [name, kv] of buckets) store.load(name, await loadBucket(handle, name, kv))
      if (fence !== undefined) await store.takeOver(buckets.get(names.tasks)!, fence)
      return store
    } catch (err) {
      await handle.nc.close()
      throw err
    }
  }

  private load(bucket: string, entries: KvEntry[]): void {
    const live: { entry: KvEntry; seq: number; value: Record<string, unknown> }[] = []
    for (const entry of entries) {
      this.writer.seen(bucket, entry.key, entry.revision)
      if (entry.operation !== 'PUT') continue
      const value = entry.json<Record<string, unknown>>()
      live.push({ entry, seq: typeof value.s === 'number' ? value.s : 0, value })
    }
    live.sort((a, b) => a.seq - b.seq)
    for (const { entry, seq, value } of live) {
      this.seq = Math.max(this.seq, seq)
      const id = idFor(entry.key)
      if (bucket === this.names.tasks) {
        const stored = value as unknown as StoredTask
        this.newestEpoch = Math.max(this.newestEpoch, stored.e)
        this.tasks.set(id, taskEntry(stored))
      } else if (bucket === this.names.messages) {
        this.messages.set(id, { message: value.m as Message, seq })
      } else {
        this.birthsById.set(id, value.b as RememberedBirth)
      }
    }
  }

  /**
   * A new leader's first writes: every unfinished task once, under its epoch.
   * A conflict here is the previous leader's last write landing after the
   * load: its value is taken (it is the newest state) and rewritten again.
   */
  private async takeOver(kv: KV, fence: StoreFence): Promise<void> {
    const refusal = fence.refusal()
    if (refusal !== undefined) throw new TrinityError('TRINITY_ERR_STORE_FENCED', refusal)
    if (this.newestEpoch > fence.epoch) throw newerEpoch(this.newestEpoch, fence.epoch)
    await Promise.all(this.unfinishedEntries().map(async ([id]) => {
      const key = keyFor(id)
      for (let attempt = 0; ; attempt++) {
        try {
          const revision = await casPut(this.handle, this.names.tasks, key, this.taskValue(this.tasks.get(id)!), this.writer.revisionOf(this.names.tasks, key), `${randomUUID()}-takeover`)
          this.writer.seen(this.names.tasks, key, revision)
          return
        } catch (err) {
          if (!isRevisionConflict(err) || attempt >= 5) throw err
          const latest = await kv.get(key)
          this.writer.seen(this.names.tasks, key, latest?.revision ?? 0)
          if (latest === null || latest.operation !== 'PUT') continue
          const stored = latest.json<StoredTask>()
          if (stored.e > fence.epoch) throw newerEpoch(stored.e, fence.epoch)
          this.tasks.set(id, taskEntry(stored))
        }
      }
    }))
  }

  private taskValue(entry: TaskEntry): Uint8Array {
    return encoder.encode(`{"e":${this.epoch},"s":${entry.seq},"k":${JSON.stringify(entry.key)},"m":${entry.summary},"r":${entry.json}}`)
  }

  saveTask(task: TaskRecord, facts?: ContentFacts): string {
    const json = JSON.stringify(task)
    this.saveTaskJson(task, json, JSON.stringify(summarizeTask(task, facts)))
    return json
  }

  saveTaskJson(task: TaskKey, json: string, summary: string): void {
    const key: TaskKey = { id: task.id, state: task.state, type: task.type, createdAt: task.createdAt, updatedAt: task.updatedAt }
    const entry: TaskEntry = { key, json, summary, seq: this.tasks.get(task.id)?.seq ?? this.seq + 1 }
    // The write first: a refused one (fenced) must leave the view as it was.
    this.writer.write(this.names.tasks, keyFor(task.id), { kind: 'put', value: this.taskValue(entry) })
    this.seq = Math.max(this.seq, entry.seq)
    this.tasks.set(task.id, entry)
  }

  transaction<T>(fn: () => T): T {
    return fn()
  }

  getTask(id: string): TaskRecord | undefined {
    const entry = this.tasks.get(id)
    return entry === undefined ? undefined : (JSON.parse(entry.json) as TaskRecord)
  }

  private unfinishedEntries(): [string, TaskEntry][] {
    return [...this.tasks].filter(([, e]) => ACTIVE_TASK_STATES.has(e.key.state)).sort(([, a], [, b]) => a.key.createdAt - b.key.createdAt || a.seq - b.seq)
  }

  unfinishedTasks(): TaskRecord[] {
    return this.unfinishedEntries().map(([, e]) => JSON.parse(e.json) as TaskRecord)
  }

  /** Newest change first, ties by first-seen order, newest first (SQLite: updated_at DESC, rowid DESC). */
  private newestFirst(filter: TaskFilter): TaskEntry[] {
    const all = [...this.tasks.values()].filter((e) => filter.state === undefined || e.key.state === filter.state)
    return all.sort(byNewestChange).slice(0, filter.limit)
  }

  listTasks(filter: TaskFilter): TaskRecord[] {
    return this.newestFirst(filter).map((e) => JSON.parse(e.json) as TaskRecord)
  }

  listSummaries(filter: TaskFilter): TaskSummary[] {
    return this.newestFirst(filter).map((e) => JSON.parse(e.summary) as TaskSummary)
  }

  countTasksByState(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const { key } of this.tasks.values()) counts.set(key.state, (counts.get(key.state) ?? 0) + 1)
    return counts
  }

  pruneFinished(keep: number): number {
    const finished = [...this.tasks.values()].filter((e) => PRUNABLE.has(e.key.state)).sort(byNewestChange).slice(keep)
    if (finished.length > 0) this.writer.check()
    for (const entry of finished) this.deleteTask(entry.key.id)
    return finished.length
  }

  private deleteTask(id: string): void {
    this.writer.write(this.names.tasks, keyFor(id), { kind: 'delete' })
    this.tasks.delete(id)
  }

  saveMessage(message: Message, maxCount: number): boolean {
    if (this.messages.has(message.id)) return false
    const seq = this.seq + 1
    this.writer.write(this.names.messages, keyFor(message.id), { kind: 'put', value: encoder.encode(`{"s":${seq},"m":${JSON.stringify(message)}}`) })
    this.seq = seq
    this.messages.set(message.id, { message, seq })
    this.dropOldestBeyond(maxCount)
    return true
  }

  private dropMessage(id: string): void {
    this.writer.write(this.names.messages, keyFor(id), { kind: 'delete' })
    this.messages.delete(id)
  }

  private dropOldestBeyond(maxCount: number): number {
    let dropped = 0
    for (const id of this.messages.keys()) {
      if (this.messages.size <= maxCount) break
      this.dropMessage(id)
      dropped++
    }
    return dropped
  }

  recentMessages(limit: number, filter: { from?: string; to?: string } = {}): Message[] {
    const all = [...this.messages.values()]
    const found: Message[] = []
    for (let i = all.length - 1; i >= 0 && found.length < limit; i--) {
      const { message } = all[i]!
      if (filter.from !== undefined && message.from !== filter.from) continue
      if (filter.to !== undefined && message.to !== filter.to) continue
      found.push(structuredClone(message))
    }
    return found.reverse()
  }

  messageCount(): number {
    return this.messages.size
  }

  pruneMessages(maxCount: number, maxAgeMs: number, now: number): number {
    const old = [...this.messages.values()].filter((m) => m.message.ts < now - maxAgeMs)
    if (old.length > 0) this.writer.check()
    for (const { message } of old) this.dropMessage(message.id)
    return old.length + this.dropOldestBeyond(maxCount)
  }

  /** A replaced birth moves to the end, as SQLite's INSERT OR REPLACE gives it a new rowid. */
  saveBirth(birth: RememberedBirth): void {
    const seq = this.seq + 1
    this.writer.write(this.names.births, keyFor(birth.id), { kind: 'put', value: encoder.encode(`{"s":${seq},"b":${JSON.stringify(birth)}}`) })
    this.seq = seq
    this.birthsById.delete(birth.id)
    this.birthsById.set(birth.id, structuredClone(birth))
  }

  forgetBirth(id: string): void {
    if (!this.birthsById.has(id)) return
    this.writer.write(this.names.births, keyFor(id), { kind: 'delete' })
    this.birthsById.delete(id)
  }

  births(): RememberedBirth[] {
    return [...this.birthsById.values()].map((b) => structuredClone(b))
  }

  durable(): Promise<void> | undefined {
    return this.writer.durable()
  }

  /** Writes not yet acknowledged: await durable() first to keep them. */
  async close(): Promise<void> {
    this.writer.close()
    if (!this.handle.nc.isClosed()) await this.handle.nc.close()
  }
}

function taskEntry(stored: StoredTask): TaskEntry {
  return { key: stored.k, json: JSON.stringify(stored.r), summary: JSON.stringify(stored.m), seq: stored.s }
}

function newerEpoch(found: number, mine: number): TrinityError {
  return new TrinityError('TRINITY_ERR_STORE_FENCED', `a task was written under epoch ${found}, newer than this hub's ${mine}: another hub leads`)
}

function byNewestChange(a: TaskEntry, b: TaskEntry): number {
  return b.key.updatedAt - a.key.updatedAt || b.seq - a.seq
}

/**
 * Every key's last value (tombstones included, for their revisions), read
 * with one watch, until it holds as many entries as the stream has messages.
 * nats.js's own "caught up" signal (`initializedFn`, from the consumer's
 * pending count) is not enough: right after a node rejoined, it was seen to
 * fire with 16 of 700 keys still to come, and a new leader that missed them
 * would forget accepted tasks. So the count is checked against the stream's
 * (asked again while short: another writer may delete meanwhile), for at most
 * LOAD_BOUND_MS, after which open fails rather than start on a partial view.
 */
async function loadBucket(handle: NatsHandle, bucket: string, kv: KV): Promise<KvEntry[]> {
  const stream = streamFor(bucket)
  const entries: KvEntry[] = []
  let caughtUp!: () => void
  const initialized = new Promise<void>((resolve) => { caughtUp = resolve })
  const watch = await kv.watch({ initializedFn: () => caughtUp() })
  const reading = (async () => {
    for await (const entry of watch) entries.push(entry)
  })()
  try {
    await initialized
    const until = performance.now() + LOAD_BOUND_MS
    for (;;) {
      const { messages } = (await handle.jsm.streams.info(stream)).state
      if (entries.length >= messages) return entries
      if (performance.now() > until) throw new TrinityError('TRINITY_ERR_STORE_UNAVAILABLE', `${bucket}: loaded ${entries.length} of its ${messages} entries in ${LOAD_BOUND_MS} ms`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    watch.stop()
    await reading
  }
}
