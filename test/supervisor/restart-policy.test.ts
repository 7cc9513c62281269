/** Backoff, jitter, reset after a stable run, and crash-loop detection, with a fixed clock and dice. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RestartTracker } from '../../src/supervisor/restart-policy.js'

const policy = { baseMs: 1000, factor: 2, maxMs: 60_000, jitter: 0.2, resetAfterMs: 60_000 }
const loop = { restarts: 5, windowMs: 120_000 }

test('delays double from the base up to the cap', () => {
  const tracker = new RestartTracker({ ...policy, jitter: 0 }, { restarts: 100, windowMs: 1 })
  const delays = Array.from({ length: 9 }, (_, n) => tracker.onExit(n * 10, 0))
  assert.deepEqual(delays.map((d) => (d.action === 'restart' ? d.delayMs : -1)), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])
})

test('jitter only shortens a delay, by at most its fraction', () => {
  const low = new RestartTracker(policy, loop, () => 0.999999).onExit(0, 0)
  const high = new RestartTracker(policy, loop, () => 0).onExit(0, 0)
  assert.deepEqual([low.action === 'restart' && low.delayMs, high.action === 'restart' && high.delayMs], [800, 1000])
})

test('a run that lasted resetAfter starts the backoff again from the base', () => {
  const tracker = new RestartTracker({ ...policy, jitter: 0 }, { restarts: 100, windowMs: 1 })
  tracker.onExit(0, 0)
  tracker.onExit(1, 0)
  const third = tracker.onExit(2, 0)
  const afterStable = tracker.onExit(100_000, 60_000)
  assert.deepEqual([third.action === 'restart' && third.delayMs, afterStable.action === 'restart' && afterStable.delayMs], [4000, 1000])
})

test('more exits than `restarts` inside the window is a crash loop; outside it is not', () => {
  const tracker = new RestartTracker(policy, loop)
  const inWindow = Array.from({ length: 6 }, (_, n) => tracker.onExit(n * 1000, 0).action)
  assert.deepEqual(inWindow, ['restart', 'restart', 'restart', 'restart', 'restart', 'give-up'])
  const spread = new RestartTracker(policy, loop)
  const slow = Array.from({ length: 10 }, (_, n) => spread.onExit(n * 30_000, 0).action)
  assert.ok(slow.every((a) => a === 'restart'), slow.join(','))
})

test('reset clears the crash-loop history', () => {
  const tracker = new RestartTracker(policy, { restarts: 1, windowMs: 10_000 })
  tracker.onExit(0, 0)
  assert.equal(tracker.onExit(1, 0).action, 'give-up')
  tracker.reset()
  assert.equal(tracker.onExit(2, 0).action, 'restart')
})
