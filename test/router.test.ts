/** The router's rules as pure logic: targets by id, role or capability; capable joined instances; start-up warnings; why a task waits. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from '../src/coordinator/registry.js'
import { Router, unmatchedRoutes } from '../src/coordinator/router.js'
import { newTaskRecord } from '../src/coordinator/task-record.js'
import type { Route } from '../src/config/schema.js'

const routes: Record<string, Route> = {
  general: { targets: ['c1'], strategy: 'least-loaded' },
  pattern_analysis: { targets: ['araya', 'c1'], strategy: 'all' },
  by_role: { targets: ['writers'], strategy: 'round-robin' },
  by_capability: { targets: ['summarize'], strategy: 'least-loaded' },
}

function fleet(): Registry {
  const registry = new Registry([{ id: 'c1' }, { id: 'araya', capabilities: ['general'] }, { id: 'w1', role: 'writers' }], 4)
  for (const id of ['c1', 'araya', 'w1']) registry.applyStatus(id, { state: 'online', session: 1 }, 0)
  return registry
}

test('a target names an id, else every instance of that role or with that capability', () => {
  const registry = fleet()
  registry.applyStatus('scribe', { state: 'online', session: 1, capabilities: ['summarize'] }, 0)
  const router = new Router(registry, routes, null)
  assert.deepEqual(router.eligible(['c1']).map((i) => i.id), ['c1'])
  assert.deepEqual(router.eligible(['writers']).map((i) => i.id), ['w1'])
  assert.deepEqual(router.eligible(['summarize']).map((i) => i.id), ['scribe'])
})

test('joined instances that declare a type are candidates of its route; configured ones are not', () => {
  const registry = fleet()
  const router = new Router(registry, routes, null)
  // araya is configured and declares general: the route (c1) alone decides.
  assert.deepEqual(router.candidates('general', ['c1'], 'least-loaded').map((i) => i.id), ['c1'])
  registry.applyStatus('helper', { state: 'online', session: 1, capabilities: ['general', 'pattern_analysis'] }, 0)
  assert.deepEqual(router.candidates('general', ['c1'], 'least-loaded').map((i) => i.id), ['c1', 'helper'])
  assert.deepEqual(router.candidates('pattern_analysis', ['araya'], 'all').map((i) => i.id), ['araya'], 'an `all` leg is its target only')
  assert.deepEqual(router.routeFor('pattern_analysis').targets, ['araya', 'c1', 'helper'], '…and the capable instance gets a leg of its own')
  const helper = registry.get('helper')!
  helper.draining = true
  assert.deepEqual(router.routeFor('pattern_analysis').targets, ['araya', 'c1'], 'no leg while draining')
  helper.draining = false
  helper.state = 'offline'
  assert.deepEqual(router.routeFor('pattern_analysis').targets, ['araya', 'c1'], 'no leg while offline')
})

test('a type with no route goes to a capable online instance, then the fallback, else it is refused', () => {
  const registry = fleet()
  const withFallback = new Router(registry, routes, { targets: ['c1'], strategy: 'least-loaded' })
  const without = new Router(registry, routes, null)
  assert.throws(() => without.routeFor('summarize'), /TRINITY_ERR_TASK_TYPE_UNKNOWN|no route for task type: "summarize"/)
  assert.deepEqual(withFallback.routeFor('summarize').targets, ['c1'])
  registry.applyStatus('scribe', { state: 'online', session: 1, capabilities: ['summarize'] }, 0)
  assert.deepEqual(withFallback.routeFor('summarize'), { targets: ['summarize'], strategy: 'least-loaded' })
  assert.deepEqual(without.routeFor('summarize'), { targets: ['summarize'], strategy: 'least-loaded' })
})

test('unmatchedRoutes names, once per route, the targets no configured instance matches', () => {
  const instances = [{ id: 'c1' }, { id: 'w1', role: 'writers' }, { id: 'x', capabilities: ['summarize'] }]
  assert.deepEqual(unmatchedRoutes({ ...routes, ghosts: { targets: ['ghost', 'phantom', 'c1'], strategy: 'all' } }, { targets: ['nobody'], strategy: 'least-loaded' }, instances), [
    { route: 'pattern_analysis', targets: ['araya'] },
    { route: 'ghosts', targets: ['ghost', 'phantom'] },
    { route: 'tasks.fallback', targets: ['nobody'] },
  ])
  assert.equal(unmatchedRoutes(routes, null, []).length, Object.keys(routes).length)
})

test('waiting says why a queued leg has no taker', () => {
  const registry = fleet()
  const router = new Router(registry, routes, null)
  registry.get('c1')!.state = 'offline'
  const task = newTaskRecord({ type: 'general', content: 'x' }, router.routeFor('general'), { priority: 'normal', maxAttempts: 3 }, 0)
  assert.equal(router.waiting(task, 0), 'no online instance can take general (route: c1; c1 is offline)')
  const fan = newTaskRecord({ type: 'pattern_analysis', content: 'x' }, router.routeFor('pattern_analysis'), { priority: 'normal', maxAttempts: 3 }, 0)
  registry.get('araya')!.state = 'timeout'
  assert.equal(router.waiting(fan, 0), 'no online instance can take pattern_analysis (route: araya; araya is timeout); no online instance can take pattern_analysis (route: c1; c1 is offline)')
  const none = newTaskRecord({ type: 'by_capability', content: 'x' }, routes['by_capability']!, { priority: 'normal', maxAttempts: 3 }, 0)
  assert.equal(router.waiting(none, 0), 'no online instance can take by_capability (route: summarize; summarize matches no instance)')
  const leg = task.assignments[0]!
  Object.assign(leg, { notBefore: 4500, attempts: 1, error: 'c1: lease expired' })
  assert.equal(router.waiting(task, 1000), 'retry 2 of 3 in 4 s (last: c1: lease expired)')
})
