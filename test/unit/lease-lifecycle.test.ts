/**
 * The leader lease's decisions (src/coordinator/lease-lifecycle.ts) as pure
 * functions with a fixed clock: acquired, renewed, retried, lost once and for
 * good, and when a hub may write.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { STANDBY, leaseTiming, nextLease, refusalAt, type LeaseState } from '../../src/coordinator/lease-lifecycle.js'

const timing = leaseTiming(3_000)
const T0 = 10_000

function held(): LeaseState & { kind: 'held' } {
  const state = nextLease(STANDBY, { kind: 'acquired', revision: 7, sentAt: T0, at: T0 + 5 }, timing)
  assert.equal(state.kind, 'held')
  return state
}

test('the timing: the deadline is sentAt + TTL less a margin, renewals at a third of the TTL', () => {
  assert.deepEqual(timing, { ttlMs: 3_000, marginMs: 300, retryMs: 150 })
  const state = held()
  assert.equal(state.epoch, 7, 'the epoch is the revision at acquisition')
  assert.equal(state.revision, 7)
  assert.equal(state.deadline, T0 + 2_700, 'counted from when the create was sent, not when it was answered')
  assert.equal(state.renewAt, T0 + 1_000)
})

test('a standby may not write, and only an acquisition moves it', () => {
  assert.match(refusalAt(STANDBY, T0) ?? '', /does not hold/)
  for (const event of [{ kind: 'renewed', revision: 3, sentAt: T0, at: T0 }, { kind: 'tick', at: T0 }, { kind: 'unanswered', at: T0 }, { kind: 'refused', at: T0, why: 'x' }] as const) {
    assert.equal(nextLease(STANDBY, event, timing), STANDBY, event.kind)
  }
})

test('a holder may write until its deadline, not at it', () => {
  const state = held()
  assert.equal(refusalAt(state, T0 + 2_699), undefined)
  assert.match(refusalAt(state, T0 + 2_700) ?? '', /ran out without a renewal/)
})

test('a renewal answered in time moves the deadline and keeps the epoch', () => {
  const renewed = nextLease(held(), { kind: 'renewed', revision: 9, sentAt: T0 + 1_000, at: T0 + 1_010 }, timing)
  assert.deepEqual(renewed, { kind: 'held', epoch: 7, revision: 9, deadline: T0 + 3_700, renewAt: T0 + 2_000 })
})

test('a renewal answered after the deadline does not bring the lease back', () => {
  const late = nextLease(held(), { kind: 'renewed', revision: 9, sentAt: T0 + 1_000, at: T0 + 2_700 }, timing)
  assert.equal(late.kind, 'lost')
  assert.match(refusalAt(late, T0 + 2_700) ?? '', /answered after/)
})

test('an acquisition answered after its own deadline is no lease', () => {
  const state = nextLease(STANDBY, { kind: 'acquired', revision: 7, sentAt: T0, at: T0 + 2_800 }, timing)
  assert.equal(state.kind, 'lost')
})

test('an unanswered renewal is retried soon, before the deadline; past it, the lease is lost', () => {
  const retry = nextLease(held(), { kind: 'unanswered', at: T0 + 1_100 }, timing)
  assert.equal(retry.kind, 'held')
  assert.equal(retry.renewAt, T0 + 1_250)
  assert.equal(retry.deadline, T0 + 2_700, 'the deadline does not move')
  const nearEnd = nextLease(held(), { kind: 'unanswered', at: T0 + 2_650 }, timing)
  assert.equal((nearEnd as LeaseState & { kind: 'held' }).renewAt, T0 + 2_700, 'never retried after the deadline')
  assert.equal(nextLease(held(), { kind: 'unanswered', at: T0 + 2_700 }, timing).kind, 'lost')
})

test('a refused renewal (another holder, or the key expired) loses the lease', () => {
  const state = nextLease(held(), { kind: 'refused', at: T0 + 1_000, why: 'wrong last sequence: 12' }, timing)
  assert.deepEqual(state, { kind: 'lost', epoch: 7, reason: 'the renewal was refused: wrong last sequence: 12' })
})

test('the deadline passing without a renewal (a paused hub) loses the lease at the tick', () => {
  assert.equal(nextLease(held(), { kind: 'tick', at: T0 + 2_699 }, timing).kind, 'held')
  const state = nextLease(held(), { kind: 'tick', at: T0 + 60_000 }, timing)
  assert.equal(state.kind, 'lost')
  assert.match(refusalAt(state, T0 + 60_000) ?? '', /epoch 7.*no renewal was answered/)
})

test('lost is final: no event, not even a renewal in time or a new acquisition, brings it back', () => {
  const gone = nextLease(held(), { kind: 'released', at: T0 }, timing)
  assert.equal(gone.kind, 'lost')
  for (const event of [
    { kind: 'renewed', revision: 9, sentAt: T0, at: T0 + 1 },
    { kind: 'acquired', revision: 11, sentAt: T0, at: T0 + 1 },
    { kind: 'tick', at: T0 },
    { kind: 'unanswered', at: T0 },
  ] as const) assert.equal(nextLease(gone, event, timing), gone, event.kind)
})
