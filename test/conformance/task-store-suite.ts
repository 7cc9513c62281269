/**
 * The task store's contract (src/coordinator/task-store.ts), as one suite
 * that every backend runs (issue #13): task-store-sqlite.test.ts on the
 * default SQLite store, and a replicated backend's own file on its cluster.
 *
 * A backend gives `open`, which opens a store on one location, the same each
 * time it is called within a test: a second call after `close` must see what
 * the first wrote, as a restarted hub does. Every write is followed by
 * `settled(store)`, which awaits `durable()` when it is a promise, since a
 * reopened store is only bound to see what was durable.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { TaskState } from '../../src/contract/constants.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import type { Message } from '../../src/contract/payloads/message.js'
import { summarizeTask } from '../../src/contract/task-summary.js'
import type { TaskStore } from '../../src/coordinator/task-store.js'

export interface StoreBackend {
  /** Opens a store on a location of its own for this test (`place`), the same on every call with that place. */
  open(place: string): Promise<TaskStore>
}

async function settled(store: TaskStore): Promise<void> {
  await store.durable()
}

let counter = 0
function task(overrides: Partial<TaskRecord> = {}): TaskRecord {
  counter++
  const at = overrides.updatedAt ?? 1_000 + counter
  return {
    id: `task-${counter}`,
    type: 'analyze',
    content: { text: `content ${counter}`, nested: { list: [1, 2, 3] } },
    priority: 'normal',
    state: 'queued',
    strategy: 'least-loaded',
    createdAt: at,
    updatedAt: at,
    maxAttempts: 3,
    assignments: [{ targets: ['c1'], state: 'queued', instance: null, attempts: 0, leaseToken: null, leaseExpiresAt: null, notBefore: at, tried: [] }],
    ...overrides,
  }
}

function message(overrides: Partial<Message> = {}): Message {
  counter++
  return { id: `msg-${counter}`, from: 'c1', to: 'c2', message: `hello ${counter}`, ts: 10_000 + counter, ...overrides }
}

/** A place per test, so backends that share one server keep tests apart. */
function placeFor(name: string): string {
  return `${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-${process.pid}-${++counter}`
}

export function taskStoreSuite(name: string, backend: StoreBackend): void {
  describe(`task store conformance: ${name}`, () => {
    const each = (title: string, fn: (open: () => Promise<TaskStore>, stores: TaskStore[]) => Promise<void>): void => {
      test(title, async () => {
        const place = placeFor(title)
        const stores: TaskStore[] = []
        const open = async (): Promise<TaskStore> => {
          const store = await backend.open(place)
          stores.push(store)
          return store
        }
        try {
          await fn(open, stores)
        } finally {
          for (const store of stores.reverse()) await store.close()
        }
      })
    }

    each('a saved task reads back whole, and after a reopen', async (open) => {
      const store = await open()
      const t = task()
      const json = store.saveTask(t)
      assert.deepEqual(JSON.parse(json), t, 'saveTask returns the record as JSON')
      assert.deepEqual(store.getTask(t.id), t)
      assert.equal(store.getTask('no-such-task'), undefined)
      await settled(store)
      await store.close()
      const again = await open()
      assert.deepEqual(again.getTask(t.id), t)
    })

    each('a later save of the same task replaces it; the listing shows the newest change first', async (open) => {
      const store = await open()
      const a = task()
      const b = task()
      store.saveTask(a)
      store.saveTask(b)
      const changed = { ...a, state: 'completed' as TaskState, updatedAt: b.updatedAt + 10, result: { ok: true } }
      store.saveTask(changed)
      await settled(store)
      assert.deepEqual(store.getTask(a.id), changed)
      assert.deepEqual(store.listTasks({ limit: 10 }).map((t) => t.id), [a.id, b.id])
      assert.deepEqual(store.listTasks({ state: 'queued', limit: 10 }).map((t) => t.id), [b.id])
      assert.deepEqual(store.listTasks({ limit: 1 }).map((t) => t.id), [a.id], 'the limit is applied after the order')
    })

    each('saveTaskJson stores the caller\'s serialisation and summary as given', async (open) => {
      const store = await open()
      const t = task({ state: 'running' })
      const summary = summarizeTask(t)
      store.saveTaskJson(t, JSON.stringify(t), JSON.stringify(summary))
      await settled(store)
      assert.deepEqual(store.getTask(t.id), t)
      assert.deepEqual(store.listSummaries({ limit: 5 }), [JSON.parse(JSON.stringify(summary))])
    })

    each('summaries list like records, by state and limit, newest change first', async (open) => {
      const store = await open()
      const tasks = [task({ state: 'queued' }), task({ state: 'completed', result: 'done' }), task({ state: 'queued' }), task({ state: 'failed', error: 'x' })]
      for (const t of tasks) store.saveTask(t)
      await settled(store)
      const expect = (list: TaskRecord[]): unknown[] => list.map((t): unknown => JSON.parse(JSON.stringify(summarizeTask(t))))
      assert.deepEqual(store.listSummaries({ limit: 10 }), expect([...tasks].reverse()))
      assert.deepEqual(store.listSummaries({ state: 'queued', limit: 10 }), expect([tasks[2]!, tasks[0]!]))
      assert.deepEqual(store.listSummaries({ limit: 2 }), expect([tasks[3]!, tasks[2]!]))
    })

    each('unfinished tasks come back oldest first, in every active state and none finished, after a reopen', async (open) => {
      const store = await open()
      const active: TaskState[] = ['queued', 'assigned', 'running', 'needs_input']
      const finished: TaskState[] = ['completed', 'failed', 'cancelled', 'dead']
      const saved = [...active, ...finished].map((state) => task({ state }))
      // Saved newest first: the order must come from createdAt, not from the order of writing.
      for (const t of [...saved].reverse()) store.saveTask(t)
      await settled(store)
      await store.close()
      const again = await open()
      assert.deepEqual(again.unfinishedTasks().map((t) => t.id), saved.slice(0, active.length).map((t) => t.id))
    })

    each('counts by state', async (open) => {
      const store = await open()
      for (const state of ['queued', 'queued', 'running', 'completed'] as TaskState[]) store.saveTask(task({ state }))
      await settled(store)
      const counts = store.countTasksByState()
      assert.equal(counts.get('queued'), 2)
      assert.equal(counts.get('running'), 1)
      assert.equal(counts.get('completed'), 1)
      assert.equal(counts.get('failed') ?? 0, 0)
    })

    each('pruneFinished keeps the newest finished tasks and every unfinished one', async (open) => {
      const store = await open()
      const done = [task({ state: 'completed' }), task({ state: 'failed' }), task({ state: 'cancelled' }), task({ state: 'completed' })]
      const open1 = task({ state: 'queued', updatedAt: 1 })
      for (const t of [open1, ...done]) store.saveTask(t)
      assert.equal(store.pruneFinished(2), 2)
      await settled(store)
      assert.equal(store.getTask(done[0]!.id), undefined)
      assert.equal(store.getTask(done[1]!.id), undefined)
      assert.ok(store.getTask(done[2]!.id) !== undefined)
      assert.ok(store.getTask(done[3]!.id) !== undefined)
      assert.ok(store.getTask(open1.id) !== undefined, 'an unfinished task is never pruned, however old')
      await store.close()
      const again = await open()
      assert.equal(again.getTask(done[0]!.id), undefined, 'pruned for good')
      assert.equal(again.listTasks({ limit: 10 }).length, 3)
    })

    each('a transaction\'s writes all land, and its value is returned', async (open) => {
      const store = await open()
      const tasks = [task(), task(), task()]
      const value = store.transaction(() => {
        for (const t of tasks) store.saveTask(t)
        return 42
      })
      assert.equal(value, 42)
      await settled(store)
      await store.close()
      const again = await open()
      for (const t of tasks) assert.deepEqual(again.getTask(t.id), t)
    })

    each('messages: a duplicate id is refused, the log keeps the last maxCount, oldest first', async (open) => {
      const store = await open()
      const first = message()
      assert.equal(store.saveMessage(first, 3), true)
      assert.equal(store.saveMessage({ ...first, message: 'again' }, 3), false, 'the same id twice is one message')
      const more = [message(), message(), message()]
      for (const m of more) assert.equal(store.saveMessage(m, 3), true)
      await settled(store)
      assert.deepEqual(store.recentMessages(10), more, 'at most maxCount, the oldest dropped')
      assert.deepEqual(store.recentMessages(2), more.slice(1), 'the last `limit`, oldest first')
      assert.equal(store.messageCount(), 3)
      await store.close()
      const again = await open()
      assert.deepEqual(again.recentMessages(10), more)
    })

    each('messages filter by sender and recipient', async (open) => {
      const store = await open()
      const a = message({ from: 'c1', to: 'c2' })
      const b = message({ from: 'c2', to: 'c1' })
      const c = message({ from: 'c1', to: 'all' })
      for (const m of [a, b, c]) store.saveMessage(m, 100)
      await settled(store)
      assert.deepEqual(store.recentMessages(10, { from: 'c1' }), [a, c])
      assert.deepEqual(store.recentMessages(10, { to: 'c1' }), [b])
      assert.deepEqual(store.recentMessages(10, { from: 'c1', to: 'c2' }), [a])
      assert.deepEqual(store.recentMessages(1, { from: 'c1' }), [c])
      assert.deepEqual(store.recentMessages(10, { from: 'nobody' }), [])
    })

    each('message retention by count and by age', async (open) => {
      const store = await open()
      const old = message({ ts: 1_000 })
      const recent = [message({ ts: 50_000 }), message({ ts: 50_001 }), message({ ts: 50_002 })]
      for (const m of [old, ...recent]) store.saveMessage(m, 100)
      assert.equal(store.pruneMessages(2, 10_000, 55_000), 2, 'one too old, then one over the count')
      await settled(store)
      assert.deepEqual(store.recentMessages(10), recent.slice(1))
      assert.equal(store.messageCount(), 2)
    })

    each('births: saved, replaced, forgotten, in the order first seen, after a reopen', async (open) => {
      const store = await open()
      const profile = { capabilities: ['analyze'], role: 'worker', name: 'C1', concurrency: 2, port: 8001 }
      store.saveBirth({ id: 'c1', session: 1, profile })
      store.saveBirth({ id: 'c2', session: 7, profile: { ...profile, name: 'C2' } })
      store.saveBirth({ id: 'c3', session: 2, profile })
      store.saveBirth({ id: 'c1', session: 2, profile: { ...profile, concurrency: 4 } })
      store.forgetBirth('c3')
      await settled(store)
      await store.close()
      const again = await open()
      const births = again.births()
      assert.deepEqual(births.map((b) => [b.id, b.session]).sort(), [['c1', 2], ['c2', 7]])
      assert.deepEqual(births.find((b) => b.id === 'c1')?.profile, { ...profile, concurrency: 4 })
    })

    each('durable() settles once the writes before it are stored, and says nothing is pending afterwards', async (open) => {
      const store = await open()
      const t = task()
      store.saveTask(t)
      const pending = store.durable()
      if (pending !== undefined) await pending
      const after = store.durable()
      if (after !== undefined) await after
      // A reopened store (another hub, after a crash) sees what durable() vouched for.
      const other = await open()
      assert.deepEqual(other.getTask(t.id), t)
    })
  })
}
