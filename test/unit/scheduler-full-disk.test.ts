/**
 * A full disk gives up no accepted task (issue #14): a change that finds no
 * room is held in memory, nothing new is assigned and client writes get 507
 * meanwhile, and once a write gets through (the next one, or the retry each
 * second) the held changes are stored and published and the task carries on.
 * The scheduler on its own deps, as in scheduler-isolation.test.ts: a real
 * SQLite store (in memory) that answers TRINITY_ERR_STORE_FULL while `full`,
 * as the real one does on a full disk (test/store-failures.test.ts has the
 * real tmpfs), a real registry and router, a clock the test moves.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { InboxFrame } from '../../src/contract/payloads/inbox.js'
import type { TaskEvent, TaskRecord } from '../../src/contract/payloads/task.js'
import { parseConfig } from '../../src/config/load.js'
import { TrinityError, isTrinityError } from '../../src/errors.js'
import { silentLogger } from '../../src/log.js'
import { Registry } from '../../src/coordinator/registry.js'
import { Router } from '../../src/coordinator/router.js'
import { Scheduler } from '../../src/coordinator/scheduler.js'
import { SqliteStore } from '../../src/coordinator/sqlite-store.js'
import { waitFor } from '../helpers/hub.js'

/** A store whose disk can be filled and emptied: while full, every task write fails as SQLITE_FULL makes it fail. */
class FillableStore extends SqliteStore {
  full = false
  attempts = 0

  override saveTaskJson(task: Pick<TaskRecord, 'id' | 'state' | 'type' | 'createdAt' | 'updatedAt'>, json: string, summary: string): void {
    this.attempts++
    if (this.full) throw new TrinityError('TRINITY_ERR_STORE_FULL', 'test.db: the disk holding hub.dataDir is full (0 bytes free)')
    super.saveTaskJson(task, json, summary)
  }
}

function setUp() {
  const config = parseConfig('tasks:\n  lease: 60s\n  maxAttempts: 3\nroutes:\n  general:\n    targets: [c1]\n', 'unit.yaml')
  const store = new FillableStore({ file: ':memory:', sync: 'normal' })
  const registry = new Registry([], 1)
  const router = new Router(registry, config.routes, config.tasks.fallback)
  const now = 1_000_000
  const sent: [string, InboxFrame][] = []
  const events: TaskEvent[] = []
  const scheduler = new Scheduler({
    store, registry, router, tasks: config.tasks, log: silentLogger(), now: () => now,
    sendToInbox: (instanceId, frame) => { sent.push([instanceId, frame]) },
    publishEvent: (_taskId, json) => events.push(JSON.parse(json) as TaskEvent),
  })
  const online = (): void => {
    registry.applyStatus('c1', { state: 'online', session: 1, capabilities: ['general'], concurrency: 1 }, now)
  }
  const tasksSent = (): string[] => sent.flatMap(([, f]) => (f.kind === 'task' ? [f.task.id] : []))
  const leaseOf = (id: string): string => {
    const frame = sent.map(([, f]) => f).find((f) => f.kind === 'task' && f.task.id === id)
    assert.ok(frame?.kind === 'task', `a task frame for ${id}`)
    return frame.leaseToken
  }
  const eventsOf = (id: string, state: string): number => events.filter((e) => e.id === id && e.state === state).length
  return { store, registry, scheduler, online, tasksSent, leaseOf, eventsOf, sent }
}

test('a completion the disk has no room for is held, not dead-lettered; once there is room it is stored, published once, and the next task goes out', async () => {
  const { store, registry, scheduler, online, tasksSent, leaseOf, eventsOf } = setUp()
  online()
  scheduler.submit({ id: 'runs', type: 'general', content: 'a' })
  scheduler.submit({ id: 'waits', type: 'general', content: 'b' })
  assert.deepEqual(tasksSent(), ['runs'], 'c1 takes one task at a time')
  assert.equal(scheduler.report('c1', { taskId: 'runs', leaseToken: leaseOf('runs'), state: 'started' }), 'applied')

  store.full = true
  assert.equal(scheduler.report('c1', { taskId: 'runs', leaseToken: leaseOf('runs'), state: 'completed', output: { ok: 1 } }), 'applied')
  assert.equal(scheduler.storeFull, true)
  assert.equal(store.getTask('runs')?.state, 'running', 'on disk: the last state that could be written')
  assert.equal(scheduler.get('runs')?.state, 'completed', 'in memory: the change, kept')
  assert.equal(eventsOf('runs', 'completed'), 0, 'nothing is published before it is stored')
  assert.equal(eventsOf('runs', 'dead'), 0)
  assert.deepEqual(tasksSent(), ['runs'], 'c1 is free, but nothing new is assigned while the disk is full')

  // Client writes are refused with 507 while the held change waits; nothing is taken into memory.
  assert.throws(() => scheduler.submit({ id: 'refused', type: 'general', content: 'c' }), (err) => isTrinityError(err, 'TRINITY_ERR_STORE_FULL'))
  assert.equal(scheduler.get('refused'), undefined)
  assert.throws(() => scheduler.cancel('waits'), (err) => isTrinityError(err, 'TRINITY_ERR_STORE_FULL'))
  assert.equal(scheduler.get('waits')?.state, 'queued')

  // Room again: the retry (each second) writes the completion, publishes it, and dispatches `waits`.
  store.full = false
  await waitFor(() => store.getTask('runs')?.state === 'completed', 30_000, 'the held completion to be written by the retry')
  assert.equal(scheduler.storeFull, false)
  assert.deepEqual(store.getTask('runs')?.assignments[0]?.output, { ok: 1 })
  assert.equal(eventsOf('runs', 'completed'), 1)
  assert.deepEqual(tasksSent(), ['runs', 'waits'])
  assert.equal(store.getTask('waits')?.state, 'assigned')
  assert.equal(registry.get('c1')?.inFlight.size, 1)
  assert.equal(scheduler.report('c1', { taskId: 'waits', leaseToken: leaseOf('waits'), state: 'completed' }), 'applied')
  assert.equal(store.getTask('waits')?.state, 'completed')
  assert.equal(eventsOf('runs', 'completed') + eventsOf('waits', 'completed'), 2, 'each completed exactly once')
  assert.equal(tasksSent().filter((id) => id === 'runs').length, 1, 'never sent again')
  scheduler.close()
})

test('an assignment the disk has no room for never happened: the leg waits queued, no frame goes out, and it is sent once there is room', () => {
  const { store, registry, scheduler, online, tasksSent } = setUp()
  // Stored queued while nobody is online.
  scheduler.submit({ id: 'later', type: 'general', content: 'a' })
  assert.equal(store.getTask('later')?.state, 'queued')
  store.full = true
  online()
  assert.equal(scheduler.dispatch(), 0)
  assert.deepEqual(tasksSent(), [], 'no frame for an assignment that is not stored')
  assert.equal(scheduler.get('later')?.state, 'queued')
  assert.equal(scheduler.get('later')?.assignments[0]?.instance, null)
  assert.equal(registry.get('c1')?.inFlight.size, 0, 'c1 keeps no slot for it')
  assert.equal(scheduler.storeFull, true)
  // While full, the next dispatch tries the held write first, and assigns nothing.
  const attempts = store.attempts
  assert.equal(scheduler.dispatch(), 0)
  assert.ok(store.attempts > attempts, 'the held write was tried again')
  // The next write attempt once there is room: held state written, then the assignment.
  store.full = false
  assert.equal(scheduler.dispatch(), 1)
  assert.deepEqual(tasksSent(), ['later'])
  assert.equal(store.getTask('later')?.state, 'assigned')
  assert.equal(store.getTask('later')?.assignments[0]?.attempts, 1, 'the attempt that never went out is not counted')
  assert.equal(scheduler.storeFull, false)
  scheduler.close()
})

test('a submission that finds the disk full is refused (507) and leaves nothing; the next one, with room, is accepted and clears the flag', () => {
  const { store, scheduler, online } = setUp()
  online()
  store.full = true
  assert.throws(() => scheduler.submit({ id: 'no-room', type: 'general', content: 'a' }), (err) => isTrinityError(err, 'TRINITY_ERR_STORE_FULL'))
  assert.equal(scheduler.get('no-room'), undefined)
  assert.equal(scheduler.storeFull, true)
  store.full = false
  assert.equal(scheduler.submit({ id: 'room', type: 'general', content: 'a' }).created, true)
  assert.equal(store.getTask('room')?.state, 'assigned')
  assert.equal(scheduler.storeFull, false)
  scheduler.close()
})

// A client's own write that is the first to find the disk full (respond, cancel, retry) is not held: its 2xx or
// PUBACK would say it is on disk. The call throws the 507, the task is as it was, no frame goes out.
const isStoreFull = (err: unknown): boolean => isTrinityError(err, 'TRINITY_ERR_STORE_FULL')

test('an answer whose write finds the disk full is refused (507) and undone: the task still waits, no input frame; with room the same answer goes through', () => {
  const { store, scheduler, online, leaseOf, eventsOf, sent } = setUp()
  online()
  scheduler.submit({ id: 'asks', type: 'general', content: 'a' })
  const lease = leaseOf('asks')
  assert.equal(scheduler.report('c1', { taskId: 'asks', leaseToken: lease, state: 'started' }), 'applied')
  assert.equal(scheduler.report('c1', { taskId: 'asks', leaseToken: lease, state: 'needs_input', question: 'go on?' }), 'applied')
  const before = structuredClone(scheduler.get('asks'))
  const frames = sent.length
  assert.equal(scheduler.storeFull, false, 'nothing has found the disk full before the answer')

  store.full = true
  assert.throws(() => scheduler.respond('asks', { answer: 'yes' }), isStoreFull)
  assert.equal(scheduler.storeFull, true)
  assert.deepEqual(scheduler.get('asks'), before, 'in memory: as before the answer')
  assert.equal(scheduler.get('asks')?.state, 'needs_input')
  assert.equal(store.getTask('asks')?.state, 'needs_input')
  assert.equal(sent.length, frames, 'no input frame for an answer that is not stored')
  assert.equal(eventsOf('asks', 'running'), 1, 'only the start: no event for the answer')
  // Still waiting: a second try while full is refused the same way.
  assert.throws(() => scheduler.respond('asks', { answer: 'yes' }), isStoreFull)
  assert.deepEqual(scheduler.get('asks'), before)

  store.full = false
  assert.deepEqual(scheduler.respond('asks', { answer: 'yes' }).instance, 'c1')
  assert.equal(scheduler.storeFull, false)
  assert.equal(store.getTask('asks')?.state, 'running')
  assert.equal(store.getTask('asks')?.assignments[0]?.input?.answer, 'yes')
  assert.deepEqual(sent.slice(frames).map(([to, f]) => [to, f]), [['c1', { kind: 'input', taskId: 'asks', leaseToken: lease, answer: 'yes' }]])
  assert.equal(eventsOf('asks', 'running'), 2)
  scheduler.close()
})

test('a cancel whose write finds the disk full is refused (507) and undone: no cancel frame, the task keeps its instance and its place in the queue; with room it goes through', () => {
  const { store, registry, scheduler, online, leaseOf, tasksSent, eventsOf, sent } = setUp()
  online()
  scheduler.submit({ id: 'runs', type: 'general', content: 'a' })
  scheduler.submit({ id: 'waits', type: 'general', content: 'b' })
  const lease = leaseOf('runs')
  assert.equal(scheduler.report('c1', { taskId: 'runs', leaseToken: lease, state: 'started' }), 'applied')
  const runs = structuredClone(scheduler.get('runs'))
  const waits = structuredClone(scheduler.get('waits'))
  const frames = sent.length
  assert.equal(scheduler.storeFull, false)

  store.full = true
  assert.throws(() => scheduler.cancel('runs'), isStoreFull)
  assert.equal(scheduler.storeFull, true)
  assert.deepEqual(scheduler.get('runs'), runs, 'in memory: as before the cancel')
  assert.equal(store.getTask('runs')?.state, 'running')
  assert.equal(sent.length, frames, 'no cancel frame for a cancel that is not stored')
  assert.equal(registry.get('c1')?.inFlight.size, 1, 'c1 still holds it')
  assert.equal(eventsOf('runs', 'cancelled'), 0)
  // A queued task's cancel: refused as well, and the task keeps its place.
  assert.throws(() => scheduler.cancel('waits'), isStoreFull)
  assert.deepEqual(scheduler.get('waits'), waits)
  assert.equal(eventsOf('waits', 'cancelled'), 0)
  // Its lease runs as before: a report is still applied.
  assert.equal(scheduler.report('c1', { taskId: 'runs', leaseToken: lease, state: 'progress', output: 'half' }), 'applied')

  store.full = false
  assert.equal(scheduler.cancel('runs').state, 'cancelled')
  assert.equal(scheduler.storeFull, false)
  assert.equal(store.getTask('runs')?.state, 'cancelled')
  assert.deepEqual(sent.slice(frames).map(([to, f]) => [to, f]).filter(([, f]) => typeof f === 'object' && f.kind === 'cancel'),
    [['c1', { kind: 'cancel', taskId: 'runs', leaseToken: lease }]])
  assert.equal(eventsOf('runs', 'cancelled'), 1)
  // c1's slot is free and `waits` was still queued: it goes out now.
  assert.deepEqual(tasksSent(), ['runs', 'waits'])
  assert.equal(store.getTask('waits')?.state, 'assigned')
  assert.equal(registry.get('c1')?.inFlight.size, 1)
  scheduler.close()
})

test('a retry whose write finds the disk full is refused (507) and undone: the task stays failed and unqueued, nothing is sent; with room it goes through', () => {
  const { store, scheduler, online, leaseOf, tasksSent, eventsOf } = setUp()
  online()
  scheduler.submit({ id: 'again', type: 'general', content: 'a' })
  assert.equal(scheduler.report('c1', { taskId: 'again', leaseToken: leaseOf('again'), state: 'failed', error: 'no', retryable: false }), 'applied')
  const before = structuredClone(scheduler.get('again'))
  assert.equal(before?.state, 'failed')
  assert.equal(scheduler.storeFull, false)

  store.full = true
  assert.throws(() => scheduler.retry('again'), isStoreFull)
  assert.equal(scheduler.storeFull, true)
  assert.deepEqual(scheduler.get('again'), before, 'as before the retry')
  assert.equal(store.getTask('again')?.state, 'failed')
  assert.equal(eventsOf('again', 'queued'), 1, 'only the admission: no event for the retry')

  store.full = false
  // Nothing was queued by the refused retry: c1 is free, and there is nothing to send it.
  assert.equal(scheduler.dispatch(), 0)
  assert.deepEqual(tasksSent(), ['again'])
  assert.equal(scheduler.retry('again').state, 'assigned', 'queued, then assigned to the free c1 at once')
  assert.equal(scheduler.storeFull, false)
  assert.deepEqual(tasksSent(), ['again', 'again'])
  assert.equal(store.getTask('again')?.state, 'assigned')
  assert.equal(store.getTask('again')?.assignments[0]?.attempts, 1, 'the replay starts over')
  assert.equal(eventsOf('again', 'queued'), 2)
  scheduler.close()
})
