/**
 * The JetStream KV task store and the leader lease with real processes on a
 * real 3-node nats-server cluster (issue #13):
 * - a leader SIGSTOPped past its lease's TTL, while a standby takes the lease
 *   and writes the same tasks, cannot write when SIGCONT wakes it: its next
 *   write fails FENCED, it steps down, and the new leader's records are intact;
 * - the CAS backstop: a writer with stale revisions (no lease to stop it) that
 *   writes a key a new leader took over fails FENCED, and from then on refuses;
 * - SIGKILL of a writer in the middle of its writes: every write whose
 *   `durable()` had resolved is there after a fresh open.
 * Writers are test/fixtures/kv-writer.ts, speaking JSON lines on stdout.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { LeaderLease } from '../../src/coordinator/leader-lease.js'
import { NatsKvStore } from '../../src/coordinator/nats-kv-store.js'
import { bucketPrefixFor } from '../../src/coordinator/nats-kv.js'
import { natsClusterScope, streamLeader } from '../helpers/nats-cluster.js'
import { ROOT, waitFor } from '../helpers/hub.js'
import type { WriterOptions } from '../fixtures/kv-writer.js'

const WRITER = join(ROOT, 'dist/test/fixtures/kv-writer.js')
const { cleanups, started } = natsClusterScope()
const servers = (): string[] => started().nodes.map((n) => n.natsUrl)

interface Line { event: string; epoch?: number; batch?: number; ids?: string[]; code?: string; reason?: string; message?: string }

interface Writer {
  readonly child: ChildProcess
  readonly lines: Line[]
  readonly exited: Promise<number | null>
  events(kind: string): Line[]
  output(): string
}

const writers: Writer[] = []
after(() => { for (const w of writers) if (w.child.exitCode === null) w.child.kill('SIGKILL') })

function startWriter(options: Omit<WriterOptions, 'servers'>): Writer {
  const child = spawn(process.execPath, [WRITER, JSON.stringify({ ...options, servers: servers() })], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Line[] = []
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    // Only whole lines: a SIGKILL may cut the last one.
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      lines.push(JSON.parse(out.slice(0, nl)) as Line)
      out = out.slice(nl + 1)
    }
  })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const writer: Writer = {
    child, lines, exited,
    events: (kind) => lines.filter((l) => l.event === kind),
    output: () => `${options.writer}: ${lines.map((l) => JSON.stringify(l)).join('\n')}\n${err}`,
  }
  writers.push(writer)
  return writer
}

const TTL_MS = 5_000

test('a leader SIGSTOPped past its lease cannot write when it wakes: FENCED, it steps down, the new leader\'s records stay', async () => {
  const prefix = bucketPrefixFor(`fence-${process.pid}`)
  const common = { prefix, ttlMs: TTL_MS, ids: 'cycle', batchSize: 5, intervalMs: 100 } as const
  const a = startWriter({ ...common, writer: 'A', mode: 'leader' })
  await waitFor(() => a.events('durable').length >= 3, 60_000, () => `A's first writes\n${a.output()}`)
  const b = startWriter({ ...common, writer: 'B', mode: 'standby' })
  // B is waiting for the lease, not writing, while A holds it.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  assert.equal(b.events('leader').length, 0, `B took the lease while A held it\n${b.output()}`)

  a.child.kill('SIGSTOP')
  await waitFor(() => b.events('durable').length >= 3, 60_000, () => `B to take the lease and write\n${b.output()}`)
  const epochA = a.events('leader')[0]?.epoch ?? 0
  const epochB = b.events('leader')[0]?.epoch ?? 0
  assert.ok(epochB > epochA, `B's epoch ${epochB} is newer than A's ${epochA}`)
  // Read after B took over, seconds after the stop: all A printed before it is in.
  const durableBeforeWake = a.events('durable').length

  a.child.kill('SIGCONT')
  const code = await Promise.race([a.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 60_000).unref())])
  assert.equal(code, 0, `A exits after its refused write\n${a.output()}`)
  const failed = [...a.events('refused'), ...a.events('rejected')]
  assert.equal(failed.length, 1, a.output())
  assert.equal(failed[0]?.code, 'TRINITY_ERR_STORE_FENCED', a.output())
  // Refused by its own lease's deadline, before any round trip: not left to the CAS backstop (the next test).
  assert.match(failed[0]?.message ?? '', /leader lease \(epoch \d+\) (ran out|was lost)/, a.output())
  assert.equal(a.events('stepped-down').length, 1, `A says it stepped down\n${a.output()}`)
  assert.equal(a.events('durable').length, durableBeforeWake, `A vouched for no write after it woke\n${a.output()}`)

  const lastOfB = b.events('durable').at(-1)?.batch ?? 0
  b.child.kill('SIGKILL')
  await b.exited
  const reader = await NatsKvStore.open({ servers: servers(), prefix })
  try {
    for (let i = 0; i < common.batchSize; i++) {
      const content = reader.getTask(`t-${i}`)?.content as { writer: string; batch: number } | undefined
      assert.equal(content?.writer, 'B', `t-${i} is B's: ${JSON.stringify(content)}`)
      assert.ok(content.batch >= lastOfB, `t-${i} holds B's last durable batch or a later one (${content.batch} < ${lastOfB})`)
    }
  } finally {
    await reader.close()
  }
})

function task(id: string, writer: string): TaskRecord {
  return {
    id, type: 'general', content: { writer }, priority: 'normal', state: 'queued', strategy: 'least-loaded', createdAt: 1, updatedAt: 1, maxAttempts: 3,
    assignments: [{ targets: ['c1'], state: 'queued', instance: null, attempts: 0, leaseToken: null, leaseExpiresAt: null, notBefore: 1, tried: [] }],
  }
}

test('the CAS backstop: a writer with stale revisions that writes a task a new leader took over is FENCED, then refuses every write', async () => {
  const prefix = bucketPrefixFor(`backstop-${process.pid}`)
  // No lease: nothing local stops this one, only the compare-and-set.
  const stale = await NatsKvStore.open({ servers: servers(), prefix })
  cleanups.push(() => stale.close())
  stale.saveTask(task('x', 'stale'))
  stale.saveTask(task('y', 'stale'))
  await stale.durable()

  const lease = await LeaderLease.open({ servers: servers(), prefix, ttlMs: TTL_MS, holder: { hub: 'new', url: 'http://new.invalid' } })
  cleanups.push(() => lease.close())
  assert.equal(await lease.tryAcquire(), true)
  const leader = await NatsKvStore.open({ servers: servers(), prefix, fence: lease })
  cleanups.push(() => leader.close())
  assert.equal((leader.getTask('y')?.content as { writer: string }).writer, 'stale', 'the new leader loaded the old state')
  leader.saveTask(task('x', 'leader'))
  await leader.durable()

  // y: only the takeover's rewrite moved its revision on, and that is enough to refuse the stale write.
  stale.saveTask(task('y', 'stale-again'))
  await assert.rejects(async () => stale.durable(), { code: 'TRINITY_ERR_STORE_FENCED' })
  assert.throws(() => stale.saveTask(task('x', 'stale-again')), { code: 'TRINITY_ERR_STORE_FENCED' }, 'refused synchronously from then on')
  assert.equal((stale.getTask('x')?.content as { writer: string }).writer, 'stale', 'a refused write leaves the view as it was')

  const reader = await NatsKvStore.open({ servers: servers(), prefix })
  try {
    assert.equal((reader.getTask('x')?.content as { writer: string }).writer, 'leader')
    assert.equal((reader.getTask('y')?.content as { writer: string }).writer, 'stale', 'the takeover rewrote y as it was; the stale write did not land')
  } finally {
    await reader.close()
  }
})

test('SIGKILL of a writer in the middle of its writes: every write durable() vouched for is there after a fresh open', async () => {
  const prefix = bucketPrefixFor(`kill-${process.pid}`)
  const c = startWriter({ prefix, writer: 'C', mode: 'leader', ttlMs: TTL_MS, ids: 'unique', batchSize: 20, intervalMs: 5 })
  await waitFor(() => c.events('durable').length >= 20, 60_000, () => `C's first 400 durable writes\n${c.output()}`)
  c.child.kill('SIGKILL')
  await c.exited
  const vouched = c.events('durable')
  const reader = await NatsKvStore.open({ servers: servers(), prefix })
  try {
    const missing: string[] = []
    for (const line of vouched) {
      for (const id of line.ids ?? []) {
        const content = reader.getTask(id)?.content as { writer: string; batch: number } | undefined
        if (content?.writer !== 'C' || content.batch !== line.batch) missing.push(id)
      }
    }
    assert.deepEqual(missing, [], `vouched for but not stored (${vouched.length} batches vouched)`)
    console.log(`# ${vouched.length * 20} writes vouched for before the kill, ${reader.listTasks({ limit: 100_000 }).length} stored`)
  } finally {
    await reader.close()
  }
})

/** A fresh store, once the cluster can serve it (after nodes come back, its streams may still be electing leaders). */
async function openWhenServed(prefix: string): Promise<NatsKvStore> {
  let store: NatsKvStore | undefined
  let last: unknown
  await waitFor(async () => {
    store = await NatsKvStore.open({ servers: servers(), prefix }).catch((err: unknown) => { last = err; return undefined })
    return store !== undefined
  }, 60_000, () => `the store to open (${String(last)})`)
  return store!
}

async function withBound<T>(what: string, promise: Promise<T> | undefined): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after 60 s: ${what}`)), 60_000) })
  try {
    return await Promise.race([promise, bound])
  } finally {
    clearTimeout(timer)
  }
}

test('SIGKILL of the NATS node leading the tasks bucket, during writes: durable() settles once the cluster re-forms, no durable write lost', async () => {
  const live = started()
  const prefix = bucketPrefixFor(`nodeloss-${process.pid}`)
  const store = await NatsKvStore.open({ servers: servers(), prefix })
  cleanups.push(() => store.close())
  const vouched: string[] = []
  let batch = 0
  const writeBatch = async (): Promise<void> => {
    const ids = Array.from({ length: 50 }, (_, i) => `n-${batch}-${i}`)
    batch++
    for (const id of ids) store.saveTask(task(id, 'nodeloss'))
    await withBound(`batch ${batch} to be durable`, store.durable())
    vouched.push(...ids)
  }
  for (let i = 0; i < 5; i++) await writeBatch()

  let leader: number | undefined
  await waitFor(async () => (leader = await streamLeader(live, `KV_${prefix}_tasks`)) !== undefined, 30_000, 'the tasks stream\'s leader')
  // Writes in flight when the leader goes: they are retried until a new leader answers.
  const ids = Array.from({ length: 200 }, (_, i) => `inflight-${i}`)
  for (const id of ids) store.saveTask(task(id, 'nodeloss'))
  const inFlight = store.durable()
  await live.kill(leader!)
  await withBound('the writes in flight at the kill to be durable', inFlight)
  vouched.push(...ids)
  for (let i = 0; i < 5; i++) await writeBatch()
  const now = await streamLeader(live, `KV_${prefix}_tasks`)
  assert.notEqual(now, leader, 'another node leads the stream')

  await live.restart(leader!)
  const reader = await openWhenServed(prefix)
  try {
    const missing = vouched.filter((id) => reader.getTask(id) === undefined)
    assert.deepEqual(missing, [], `${missing.length} of ${vouched.length} durable writes missing`)
  } finally {
    await reader.close()
  }
})

test('the cluster without quorum vouches for nothing: a writer killed meanwhile loses only writes it never said were durable', async () => {
  const live = started()
  const prefix = bucketPrefixFor(`quorum-${process.pid}`)
  const d = startWriter({ prefix, writer: 'D', mode: 'leader', ttlMs: 60_000, ids: 'unique', batchSize: 20, intervalMs: 5 })
  await waitFor(() => d.events('durable').length >= 10, 60_000, () => `D's first writes\n${d.output()}`)
  await live.kill(1)
  await live.kill(2)
  // Acknowledgements already on their way may still come in; after that, none without a quorum.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  const atOutage = d.events('durable').length
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  assert.equal(d.events('durable').length, atOutage, `D vouched for writes with 2 of 3 nodes down\n${d.output()}`)
  d.child.kill('SIGKILL')
  await d.exited

  // Together: each waits for routes to both others.
  await Promise.all([live.restart(1), live.restart(2)])
  const reader = await openWhenServed(prefix)
  try {
    const missing = d.events('durable').flatMap((l) => l.ids ?? []).filter((id) => reader.getTask(id) === undefined)
    assert.deepEqual(missing, [], 'vouched for but not stored')
  } finally {
    await reader.close()
  }
})

test('the lease: one holder at a time; a release is seen by a waiting standby at once, which takes a newer epoch and names itself', async () => {
  const prefix = bucketPrefixFor(`lease-${process.pid}`)
  const open = (hub: string): Promise<LeaderLease> => LeaderLease.open({ servers: servers(), prefix, ttlMs: 600_000, holder: { hub, url: `http://${hub}.invalid:8080` } })
  const a = await open('hub-a')
  cleanups.push(() => a.close())
  const b = await open('hub-b')
  cleanups.push(() => b.close())
  assert.equal(await a.tryAcquire(), true)
  assert.equal(a.refusal(), undefined, 'the holder may write')
  assert.equal(await b.tryAcquire(), false, 'a second create fails while the first holder is live')
  assert.match(b.refusal() ?? '', /does not hold/)
  assert.deepEqual(await b.current(), { hub: 'hub-a', url: 'http://hub-a.invalid:8080', revision: a.epoch }, 'a standby sees who leads')

  const taken = b.acquire()
  let tookOver = false
  void taken.then(() => { tookOver = true })
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal(tookOver, false, 'the standby waits while the lease is held')
  await a.release()
  // The TTL is 10 minutes and the standby polls at a third of it: within the 60 s bound, only the tombstone can wake it.
  await withBound('the standby to take the released lease', taken)
  assert.equal(await a.lost, 'this hub released the lease')
  assert.ok(b.epoch > a.epoch, `the new epoch ${b.epoch} is newer than ${a.epoch}`)
  assert.match(a.refusal() ?? '', /was lost/)
  assert.equal(b.refusal(), undefined)
  assert.equal((await a.current())?.hub, 'hub-b')
})
