/**
 * Group commit (issue #12): inside `Scheduler.batch` (what the embedded
 * hub's in-process deliveries run in), changes are staged and the turn's
 * changes share one commit; each message's acknowledgement, the events and
 * the inbox frames follow that commit. The scheduler on its own deps, as in
 * scheduler-full-disk.test.ts: a real SQLite store, counting its commits.
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

class CountingStore extends SqliteStore {
  commits = 0
  full = false
  override transaction<T>(fn: () => T): T {
    const result = super.transaction(fn)
    this.commits++
    return result
  }

  override saveTaskJson(task: Pick<TaskRecord, 'id' | 'state' | 'type' | 'createdAt' | 'updatedAt'>, json: string, summary: string): void {
    if (this.full) throw new TrinityError('TRINITY_ERR_STORE_FULL', 'test.db: the disk holding hub.dataDir is full (0 bytes free)')
    super.saveTaskJson(task, json, summary)
  }
}

function setUp() {
  const config = parseConfig('tasks:\n  lease: 60s\nroutes:\n  general:\n    targets: [c1]\n', 'unit.yaml')
  const store = new CountingStore({ file: ':memory:', sync: 'normal' })
  const registry = new Registry([], 1)
  const router = new Router(registry, config.routes, config.tasks.fallback)
  const now = 1_000_000
  const sent: [string, InboxFrame][] = []
  const events: TaskEvent[] = []
  const refusedLater: [string, TrinityError][] = []
  const scheduler = new Scheduler({
    store, registry, router, tasks: config.tasks, log: silentLogger(), now: () => now,
    sendToInbox: (instanceId, frame) => { sent.push([instanceId, frame]) },
    publishEvent: (_taskId, json) => events.push(JSON.parse(json) as TaskEvent),
    refusedLater: (id, error) => refusedLater.push([id, error]),
  })
  registry.applyStatus('c1', { state: 'online', session: 1, capabilities: ['general'], concurrency: 100 }, now)
  return { store, scheduler, sent, events, refusedLater }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

test('a turn of batched submissions: one commit; each acknowledgement after its task is on disk, frames and events after the commit', async () => {
  const { store, scheduler, sent, events } = setUp()
  const before = store.commits
  const ackedWith: (TaskRecord | undefined)[] = []
  for (let i = 0; i < 50; i++) {
    scheduler.batch(() => { scheduler.submit({ id: `t${i}`, type: 'general', content: i }) }, () => ackedWith.push(store.getTask(`t${i}`)))
  }
  assert.equal(ackedWith.length, 0, 'no acknowledgement before the commit')
  assert.equal(store.getTask('t0'), undefined, 'staged, not yet written')
  assert.deepEqual([sent.length, events.length], [0, 0], 'nothing sent or published before the commit')
  await turn()
  assert.equal(store.commits - before, 1, 'one commit for the turn')
  assert.equal(ackedWith.length, 50)
  assert.ok(ackedWith.every((t) => t?.state === 'assigned'), 'each acknowledged with its task on disk, assigned')
  assert.equal(sent.filter(([, f]) => f.kind === 'task').length, 50)
  assert.equal(events.filter((e) => e.state === 'queued').length, 50)
})

test('a batched message that changes nothing is acknowledged at once, unless one before it waits for the commit', async () => {
  const { scheduler } = setUp()
  const order: string[] = []
  scheduler.batch(() => undefined, () => order.push('nothing'))
  assert.deepEqual(order, ['nothing'])
  scheduler.batch(() => { scheduler.submit({ id: 'a', type: 'general', content: 1 }) }, () => order.push('a'))
  scheduler.batch(() => undefined, () => order.push('after a'))
  assert.deepEqual(order, ['nothing'], 'in order behind the submission [MQTT-4.6.0-2]')
  await turn()
  assert.deepEqual(order, ['nothing', 'a', 'after a'])
})

test('a write outside a batch (HTTP, a timer) commits what is staged with it, and releases its acknowledgements', () => {
  const { store, scheduler } = setUp()
  let acked = false
  scheduler.batch(() => { scheduler.submit({ id: 'staged', type: 'general', content: 1 }) }, () => { acked = true })
  scheduler.submit({ id: 'direct', type: 'general', content: 2 })
  assert.equal(acked, true)
  assert.equal(store.getTask('staged')?.state, 'assigned')
  assert.equal(store.getTask('direct')?.state, 'assigned')
})

test('a batched submission its commit cannot store (a full disk) is refused through refusedLater, acknowledged, and not kept', async () => {
  const { store, scheduler, refusedLater } = setUp()
  store.full = true
  let acked = false
  scheduler.batch(() => { scheduler.submit({ id: 'no-room', type: 'general', content: 1 }) }, () => { acked = true })
  await turn()
  assert.equal(acked, true)
  assert.deepEqual(refusedLater.map(([id, error]) => [id, isTrinityError(error, 'TRINITY_ERR_STORE_FULL')]), [['no-room', true]])
  assert.equal(scheduler.get('no-room'), undefined, 'refused, not kept in memory')
})

test('close() writes what a batch staged and releases its acknowledgement', () => {
  const { store, scheduler } = setUp()
  let acked = false
  scheduler.batch(() => { scheduler.submit({ id: 'at-stop', type: 'general', content: 1 }) }, () => { acked = true })
  scheduler.close()
  assert.equal(acked, true)
  assert.equal(store.getTask('at-stop')?.state, 'assigned')
})

test('every change staged in a turn has its event, in order, after the commit: not only where the turn ended', async () => {
  const { scheduler, sent, events } = setUp()
  scheduler.batch(() => { scheduler.submit({ id: 'quick', type: 'general', content: 1 }) }, () => undefined)
  await turn()
  const frame = sent.map(([, f]) => f).find((f) => f.kind === 'task')
  assert.ok(frame?.kind === 'task')
  // started and completed in one turn (an instance that reports both at once)
  scheduler.batch(() => { scheduler.report('c1', { taskId: 'quick', leaseToken: frame.leaseToken, state: 'started' }) }, () => undefined)
  scheduler.batch(() => { scheduler.report('c1', { taskId: 'quick', leaseToken: frame.leaseToken, state: 'completed', output: 'ok' }) }, () => undefined)
  assert.deepEqual(events.map((e) => e.state), ['queued', 'assigned'], 'nothing of this turn before its commit')
  await turn()
  assert.deepEqual(events.map((e) => e.state), ['queued', 'assigned', 'running', 'completed'])
})
