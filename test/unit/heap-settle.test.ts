/**
 * When the hub collects after a burst (src/heap-settle.ts): only in a quiet
 * window, only after work, only when the heap has grown well past what was
 * live, and once per spell of work, so an idle hub is not collected over and over.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SETTLE_RULE, settleStep, type SettleState } from '../../src/heap-settle.js'

const MB = 1024 * 1024
const rule = SETTLE_RULE
/** A heap well past the threshold for `settledUsed` (30 MB → 61 MB). */
const big = 140 * MB
const busy = 0.9
const quiet = 0.02

test('a quiet window after busy ones, with a heap grown past the threshold, collects', () => {
  let state: SettleState = { settledUsed: 30 * MB, worked: false }
  const during = settleStep(state, { loopUtilization: busy, heapTotal: big }, rule)
  assert.deepEqual(during, { collect: false, worked: true }, 'a busy loop is never interrupted')
  state = { ...state, worked: during.worked }
  assert.deepEqual(settleStep(state, { loopUtilization: quiet, heapTotal: big }, rule), { collect: true, worked: false })
})

test('a quiet hub that did no work since the last collection is not collected, however big its heap', () => {
  const state: SettleState = { settledUsed: 30 * MB, worked: false }
  assert.equal(settleStep(state, { loopUtilization: quiet, heapTotal: big }, rule).collect, false)
})

test('after work, a heap within growth and slack of the settled one is left alone, and the work is remembered', () => {
  const settledUsed = 30 * MB
  const threshold = settledUsed * rule.growth + rule.slackBytes
  const state: SettleState = { settledUsed, worked: true }
  assert.deepEqual(settleStep(state, { loopUtilization: quiet, heapTotal: threshold }, rule), { collect: false, worked: true })
  assert.equal(settleStep(state, { loopUtilization: quiet, heapTotal: threshold + 1 }, rule).collect, true)
})

test('the utilization bound is inclusive: at quietBelow the hub is quiet, just above it busy', () => {
  const state: SettleState = { settledUsed: 30 * MB, worked: true }
  assert.equal(settleStep(state, { loopUtilization: rule.quietBelow, heapTotal: big }, rule).collect, true)
  assert.equal(settleStep(state, { loopUtilization: rule.quietBelow + 0.01, heapTotal: big }, rule).collect, false)
})
