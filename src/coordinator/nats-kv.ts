/**
 * What the JetStream KV task store (nats-kv-store.ts) and the leader lease
 * (leader-lease.ts) share: the connection, bucket names, key encoding and
 * the one compare-and-set write (issue #13).
 *
 * `nats` is imported here on demand only, by `connectNats`: a hub on the
 * default SQLite store never loads it (idle RSS).
 *
 * Every write is a publish to the key's subject with
 * `Nats-Expected-Last-Subject-Sequence` (what `KV.create` and
 * `KV.update(key, value, revision)` send, revision 0 for a key that holds
 * nothing), plus a `Nats-Msg-Id` unique to the write. The KV API's own calls
 * are not used for writes because (1) `create` over a deleted key falls back
 * to an update on whatever tombstone it then reads, which is not a CAS on
 * what this writer last saw, and (2) they take no message id: a retry of a
 * write whose acknowledgement was lost would fail its own CAS. With the id,
 * JetStream answers the retry with the first write's acknowledgement
 * (`duplicate: true`, same sequence) within the stream's duplicate window
 * (2 min; the lease bucket's is its TTL), checked before the expected sequence
 * (tried on nats-server 2.9.10). Deletes remove the exact revision last seen
 * (a stream message delete): a revision that is gone means another writer
 * moved the key on, so a delete is a CAS too, and it leaves no tombstone.
 */
import type { JetStreamClient, JetStreamManager, KV, NatsConnection } from 'nats'

/** The bucket name prefix for a hub's topic prefix: bucket names allow [-\w] only, so `_`, `.` and `/` are escaped (one-to-one). */
export function bucketPrefixFor(topicPrefix: string): string {
  return topicPrefix.replace(/[_./]/g, (c) => (c === '_' ? '__' : c === '.' ? '_d' : '_s'))
}

/**
 * A Trinity id ([A-Za-z0-9][A-Za-z0-9._-]{0,63}) as a KV key. KV keys are
 * subject tokens ([-/=.\w]+, nats.js `validateKey`): a `.` would split the key
 * into tokens, and `a..b` or a trailing `.` is no valid subject. `=` never
 * occurs in an id, so `.` → `=` is one-to-one.
 */
export function keyFor(id: string): string {
  return id.replaceAll('.', '=')
}

export function idFor(key: string): string {
  return key.replaceAll('=', '.')
}

export interface NatsHandle {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
}

/** A NATS user and password (`authorization` in the servers' config). */
export interface NatsLogin {
  readonly username: string
  readonly password: string
}

export interface ConnectOptions {
  servers: readonly string[]
  /** undefined or null: connect without one. */
  login?: NatsLogin | null | undefined
  /** The connection's name, as the servers' monitor pages show it. */
  name: string
  /** How long one JetStream request waits for its answer. */
  timeoutMs: number
}

/** A connection that reconnects for ever (to any of `servers`): the writers above decide when to give up, not the client. */
export async function connectNats(options: ConnectOptions): Promise<NatsHandle> {
  const nats = await import('nats')
  const nc = await nats.connect({
    servers: [...options.servers],
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: options.timeoutMs,
    ...(options.login === undefined || options.login === null ? {} : { user: options.login.username, pass: options.login.password }),
  })
  try {
    const js = nc.jetstream({ timeout: options.timeoutMs })
    const jsm = await nc.jetstreamManager({ timeout: options.timeoutMs })
    return { nc, js, jsm }
  } catch (err) {
    await nc.close()
    throw err
  }
}

export interface BucketOptions {
  replicas: number
  /** max_age: what makes the lease expire (2.9 has no per-key TTL). */
  ttlMs?: number
}

/** How long creating a bucket may take. */
const BUCKET_CREATE_TIMEOUT_MS = 30_000

/** Opens (creating if need be) a file-backed bucket keeping one value per key. */
export async function openBucket(handle: NatsHandle, name: string, options: BucketOptions): Promise<KV> {
  const { StorageType } = await import('nats')
  const config = { history: 1, replicas: options.replicas, storage: StorageType.File, ...(options.ttlMs === undefined ? {} : { ttl: options.ttlMs }) }
  // Creating a replicated stream takes a Raft round on every node: seconds on a busy machine, beyond the
  // short request timeout a lease's renewals need. Created (or found) first with time to spare, then
  // opened on the handle's own context, whose timeout its writes use.
  await handle.nc.jetstream({ timeout: BUCKET_CREATE_TIMEOUT_MS }).views.kv(name, config)
  return handle.js.views.kv(name, config)
}

/** The subject a key's values are published on (`$KV.{bucket}.{key}`), as nats.js KV builds it. */
function subjectFor(bucket: string, key: string): string {
  return `$KV.${bucket}.${key}`
}

export function streamFor(bucket: string): string {
  return `KV_${bucket}`
}

/** JetStream's "wrong last sequence" (10071): the key's revision is not the one this write expected. */
export function isRevisionConflict(err: unknown): boolean {
  return apiErrorCode(err) === 10071
}

/** A stream message delete of a sequence that is not there (10043 "sequence not found"). */
export function isSequenceGone(err: unknown): boolean {
  return apiErrorCode(err) === 10043
}

function apiErrorCode(err: unknown): number | undefined {
  const api = (err as { api_error?: { err_code?: unknown } } | null)?.api_error
  return typeof api?.err_code === 'number' ? api.err_code : undefined
}

/** Puts `value` at `key` if its revision is `revision` (0: the key holds nothing); the new revision. */
export async function casPut(handle: NatsHandle, bucket: string, key: string, value: Uint8Array, revision: number, msgId: string): Promise<number> {
  const ack = await handle.js.publish(subjectFor(bucket, key), value, { msgID: msgId, expect: { lastSubjectSequence: revision } })
  return ack.seq
}

/** Removes revision `revision` of a key (and so the key, history being 1); throws isSequenceGone when it is not there. */
export async function casDelete(handle: NatsHandle, bucket: string, revision: number): Promise<void> {
  await handle.jsm.streams.deleteMessage(streamFor(bucket), revision, false)
}

/**
 * Deletes a key with a tombstone (what `KV.delete` publishes, with the CAS
 * it allows): unlike `casDelete`, a KV watcher sees it, which is how a
 * standby learns at once that the leader stepped down.
 */
export async function casTombstone(handle: NatsHandle, bucket: string, key: string, revision: number): Promise<number> {
  const { headers } = await import('nats')
  const h = headers()
  h.set('KV-Operation', 'DEL')
  const ack = await handle.js.publish(subjectFor(bucket, key), new Uint8Array(0), { headers: h, expect: { lastSubjectSequence: revision } })
  return ack.seq
}
