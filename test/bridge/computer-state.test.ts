/** The rules that name a computer's state, from what its bus says. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BusView, peerView } from '../../bridges/git/computer-state.js'

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))
const stats = (tasks: Record<string, number>): Buffer => json({ instances: {}, healthChecks: 0, messages: 0, tasks: { queued: 0, assigned: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0, ...tasks }, rejected: 0, at: 0 })

test('EMERGENCY when more than half the instances are down; else WORKING, IDLE, ACTIVE from the task counts', () => {
  const view = new BusView()
  assert.equal(view.state(), 'ACTIVE', 'no hub stats yet')
  view.hubStats(stats({}))
  assert.equal(view.state(), 'IDLE')
  view.hubStats(stats({ queued: 2 }))
  assert.equal(view.state(), 'ACTIVE')
  assert.equal(view.queueDepth(), 2)
  view.hubStats(stats({ queued: 2, running: 1 }))
  assert.equal(view.state(), 'WORKING')
  view.instanceStatus('a', json({ state: 'online', session: 1 }))
  view.health('b', json({ state: 'offline', responseMs: null, checkedAt: 0 }))
  view.health('c', json({ state: 'timeout', responseMs: null, checkedAt: 0 }))
  assert.deepEqual(view.instances(), [{ id: 'a', health: 'online' }, { id: 'b', health: 'offline' }, { id: 'c', health: 'timeout' }])
  assert.equal(view.state(), 'EMERGENCY', 'two of three down')
  view.health('c', json({ state: 'degraded', responseMs: 900, checkedAt: 0 }))
  assert.equal(view.state(), 'WORKING', 'one of three down is not an emergency')
  view.health('b', Buffer.alloc(0))
  view.instanceStatus('b', Buffer.alloc(0))
  assert.deepEqual(view.instances().map((i) => i.id), ['a', 'c'], 'a cleared retained status forgets the instance')
})

test('a peer is OFFLINE when its file is older than 3 intervals, or missing', () => {
  const now = Date.parse('2026-11-25T18:00:00.000Z')
  const status = { computer: '2', state: 'IDLE' as const, updated: '2026-11-25T17:59:00.000Z', lastSync: null, queueDepth: 0, instances: [], read: {} }
  assert.equal(peerView('2', status, 30_000, now).state, 'IDLE', '60 s old, 3 intervals are 90 s')
  assert.equal(peerView('2', status, 15_000, now).state, 'OFFLINE', '60 s old, 3 intervals are 45 s')
  assert.equal(peerView('2', undefined, 15_000, now).state, 'OFFLINE')
  assert.equal(peerView('2', { ...status, updated: 'garbage' }, 15_000, now).state, 'OFFLINE')
})
