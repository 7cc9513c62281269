/**
 * Gives the heap back once a burst is over (issue #12).
 *
 * Measured on the hub (bench/peers.ts's setup, `--trace-gc`): under a burst
 * of 10,000 tasks V8 grows the old generation to about four times what is
 * live (its growing factor is high while the program is busy), 33 MB live
 * became a 145 MB heap and 230 MB of RSS, and all of it garbage once the
 * burst ends. V8 collects it only when its memory reducer sees a low
 * allocation rate at one of its timers, 8 s apart and pushed back by every
 * collection: anywhere from 8 to 25 s after the burst, so the hub sat at
 * 2.3x its idle RSS.
 *
 * The rule: every `intervalMs`, if the event loop was nearly idle in that
 * window, had been busy since the last collection, and the heap has grown
 * well past what was live after that collection, collect now, once. A busy
 * loop is never interrupted (a burst in progress is left to V8), and an idle
 * hub is never collected again and again: only work since the last
 * collection makes it eligible.
 *
 * Needs `gc`, which only `--expose-gc` defines (the hub's node args,
 * src/hub-node-args.ts); without it this does nothing.
 */
import { performance } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'

export interface SettleRule {
  /** How often the loop and the heap are looked at. */
  readonly intervalMs: number
  /** Event-loop utilization (0..1) over a window at or under which the hub counts as quiet. */
  readonly quietBelow: number
  /** Collect once the heap V8 holds exceeds the used heap after the last collection times this, plus `slackBytes`. */
  readonly growth: number
  readonly slackBytes: number
}

export const SETTLE_RULE: SettleRule = { intervalMs: 250, quietBelow: 0.1, growth: 1.5, slackBytes: 16 * 1024 * 1024 }

export interface SettleState {
  /** The used heap right after the last collection this module made (or at start). */
  readonly settledUsed: number
  /** Whether a window was busy since then. */
  readonly worked: boolean
}

export interface SettleSample {
  /** Event-loop utilization over the last window, 0..1. */
  readonly loopUtilization: number
  /** The heap V8 holds now (`total_heap_size`: live, garbage and free room). */
  readonly heapTotal: number
}

/** Pure: after one window, whether to collect now, and whether the hub has worked since the last collection. */
export function settleStep(state: SettleState, sample: SettleSample, rule: SettleRule = SETTLE_RULE): { collect: boolean; worked: boolean } {
  const quiet = sample.loopUtilization <= rule.quietBelow
  const worked = state.worked || !quiet
  const collect = quiet && worked && sample.heapTotal > state.settledUsed * rule.growth + rule.slackBytes
  return { collect, worked: worked && !collect }
}

export interface HeapSettle { stop(): void }

/** Starts the watch, or returns undefined when `gc` is not exposed. The timer never holds the process open. */
export function startHeapSettle(rule: SettleRule = SETTLE_RULE): HeapSettle | undefined {
  const collect = globalThis.gc
  if (collect === undefined) return undefined
  let state: SettleState = { settledUsed: getHeapStatistics().used_heap_size, worked: false }
  let last = performance.eventLoopUtilization()
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization()
    const step = settleStep(state, { loopUtilization: performance.eventLoopUtilization(now, last).utilization, heapTotal: getHeapStatistics().total_heap_size }, rule)
    last = now
    state = { ...state, worked: step.worked }
    if (!step.collect) return
    // Twice: the first frees the garbage, the second gives back the pages the first left empty
    // (measured after a 10,000-task burst: one collection left a 75 MB heap, two a 35 MB one).
    collect()
    collect()
    state = { settledUsed: getHeapStatistics().used_heap_size, worked: false }
    // The collection itself is loop time: leave it out of the next window.
    last = performance.eventLoopUtilization()
  }, rule.intervalMs)
  timer.unref()
  return { stop: () => clearInterval(timer) }
}
