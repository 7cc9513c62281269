/**
 * One task cannot stop the others (issue #14, finding 1): when a task's
 * record cannot be stored, or its assignment cannot be sent, that task is a
 * dead letter with the reason and dispatch and the lease sweep go on with
 * the rest. Since input is bounded by `limits.maxDepth`, no such task gets in
 * through the public API any more, so the scheduler is driven directly, on
 * its own deps: a real SQLite store (in memory) that refuses the records of
 * one task, as a record that fails to serialise would, a real registry and
 * router, a clock the test moves.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { InboxFrame } from '../../src/contract/payloads/inbox.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { parseConfig } from '../../src/config/load.js'
import { silentLogger } from '../../src/log.js'
import { Registry } from '../../src/coordinator/registry.js'
import { Router } from '../../src/coordinator/router.js'
import { Scheduler } from '../../src/coordinator/scheduler.js'
import { SqliteStore } from '../../src/coordinator/sqlite-store.js'

/** Refuses any record that still carries a poisoned task's content: stripped of its bodies, it is stored. */
class PoisonableStore extends SqliteStore {
  readonly poisoned = new Set<string>()

  override saveTask(task: TaskRecord): string {
    this.refuse(task)
    return super.saveTask(task)
  }

  override saveTaskJson(task: Pick<TaskRecord, 'id' | 'state' | 'type' | 'createdAt' | 'updatedAt'>, json: string, summary: string): void {
    if (this.poisoned.has(task.id) && json.includes('"content":"poison"')) throw new RangeError('Maximum call stack size exceeded')
    super.saveTaskJson(task, json, summary)
  }

  private refuse(task: TaskRecord): void {
    if (this.poisoned.has(task.id) && task.content === 'poison') throw new RangeError('Maximum call stack size exceeded')
  }
}

function setUp(options: { unsendable?: string } = {}) {
  const config = parseConfig('tasks:\n  lease: 10s\n  maxAttempts: 3\n', 'unit.yaml')
  const store = new PoisonableStore({ file: ':memory:', sync: 'normal' })
  const registry = new Registry([], 4)
  const router = new Router(registry, config.routes, config.tasks.fallback)
  let now = 1_000_000
  const sent: [string, InboxFrame][] = []
  const events: { taskId: string; state: string }[] = []
  const scheduler = new Scheduler({
    store, registry, router, tasks: config.tasks, log: silentLogger(), now: () => now,
    sendToInbox: (instanceId, frame) => {
      if (frame.kind === 'task' && frame.task.id === options.unsendable) throw new RangeError('Maximum call stack size exceeded')
      sent.push([instanceId, frame])
    },
    publishEvent: (taskId, json) => events.push({ taskId, state: (JSON.parse(json) as { state: string }).state }),
  })
  const online = (): void => {
    registry.applyStatus('c1', { state: 'online', session: 1, capabilities: ['general'], concurrency: 4 }, now)
  }
  const tasksSent = (): string[] => sent.flatMap(([, f]) => (f.kind === 'task' ? [f.task.id] : []))
  return { store, registry, scheduler, sent, events, online, tasksSent, advance: (ms: number) => { now += ms } }
}

test('dispatch: a task whose record cannot be stored is dead-lettered with the reason; the others are assigned and sent', () => {
  const { store, scheduler, events, online, tasksSent } = setUp()
  // Admitted while nobody is online: both are stored, queued.
  scheduler.submit({ id: 'poison', type: 'general', content: 'poison' })
  scheduler.submit({ id: 'good', type: 'general', content: 'fine' })
  assert.equal(store.getTask('poison')?.state, 'queued')
  store.poisoned.add('poison')
  online()
  assert.equal(scheduler.dispatch(), 1, 'one assignment went out')
  assert.deepEqual(tasksSent(), ['good'])
  assert.equal(store.getTask('good')?.state, 'assigned')
  const dead = store.getTask('poison')
  assert.equal(dead?.state, 'dead')
  assert.match(dead?.error ?? '', /^could not be stored: Maximum call stack size exceeded; its content, result and outputs could not be stored either/)
  assert.equal(dead?.assignments[0]?.state, 'dead')
  assert.match(dead?.assignments[0]?.error ?? '', /could not be stored/)
  assert.ok(events.some((e) => e.taskId === 'poison' && e.state === 'dead'), 'its dead event was published')
  // It is out of the queue for good, and dispatch carries on with what comes next.
  scheduler.submit({ id: 'next', type: 'general', content: 'fine' })
  assert.deepEqual(tasksSent(), ['good', 'next'])
  assert.equal(scheduler.get('poison')?.state, 'dead')
  scheduler.close()
})

test('dispatch: a task whose assignment cannot be sent is dead-lettered; the others are sent', () => {
  const { store, scheduler, online, tasksSent } = setUp({ unsendable: 'unsendable' })
  online()
  scheduler.submit({ id: 'unsendable', type: 'general', content: 'fine' })
  scheduler.submit({ id: 'good', type: 'general', content: 'fine' })
  assert.deepEqual(tasksSent(), ['good'])
  const dead = store.getTask('unsendable')
  assert.equal(dead?.state, 'dead')
  assert.equal(dead?.error, 'could not be sent to c1: Maximum call stack size exceeded')
  assert.equal(dead?.content, 'fine', 'a record that can be stored is stored whole')
  assert.equal(store.getTask('good')?.state, 'assigned')
  scheduler.close()
})

test('lease sweep: a task that cannot be stored is dead-lettered; the other expired lease is retried', () => {
  const { store, registry, scheduler, online, tasksSent, advance } = setUp()
  online()
  scheduler.submit({ id: 'poison', type: 'general', content: 'poison' })
  scheduler.submit({ id: 'other', type: 'general', content: 'fine' })
  assert.deepEqual(tasksSent(), ['poison', 'other'])
  store.poisoned.add('poison')
  advance(11_000) // both leases ran out
  assert.doesNotThrow(() => scheduler.sweepLeases())
  assert.equal(store.getTask('poison')?.state, 'dead')
  assert.match(store.getTask('poison')?.error ?? '', /^could not be stored/)
  assert.equal(registry.get('c1')?.inFlight.has('poison#0'), false, 'c1 no longer holds it')
  // `other` went back to the queue (after the retry backoff) and is handed out again.
  advance(60_000)
  scheduler.dispatch()
  assert.deepEqual(tasksSent(), ['poison', 'other', 'other'])
  assert.equal(store.getTask('other')?.state, 'assigned')
  assert.equal(store.getTask('other')?.assignments[0]?.attempts, 2)
  scheduler.close()
})
