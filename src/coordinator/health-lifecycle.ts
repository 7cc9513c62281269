/**
 * What can happen to an instance's health, in one place: `nextHealth` folds
 * one event (a status on the bus, a probe result, the supervisor's view of
 * the process) into a small plain record and says what the caller must act
 * on. The registry and the health monitor decide *when* (bus handlers,
 * timers, publishing, logging, response-time windows); this module decides
 * *what* the health becomes. Nothing here reads a clock or does I/O.
 *
 * The rules it keeps:
 * - A status carries the bus session it was sent on. One from an older
 *   session than the current one is stale (a Will of a connection that a new
 *   birth already replaced: the Sparkplug bdSeq pitfall) and changes nothing.
 * - A birth is proof of life: online at once, without waiting for passes.
 * - Hysteresis: `missesBeforeOffline` misses in a row before offline (timeout
 *   until then), `passesBeforeOnline` passes in a row before an instance in
 *   timeout or offline counts as up again. An instance that reported `error`
 *   stays in error until its next status whatever its answers say; misses
 *   still take it to timeout and offline.
 * - A ping answer (or its timeout) speaks for the session it was sent on: if
 *   the instance disconnected or came back on a new session meanwhile, that
 *   is newer evidence and the answer is dropped. A ping sent *after* a Will
 *   (the hub sends one when a disconnected instance still heartbeats) and
 *   answered is newer evidence still: the instance is connected again. A Will
 *   never outranks a later answer.
 * - The first answer after a (re)start (the first of all, the first after a
 *   miss, the first on a new session) is a warm-up answer: the caller keeps
 *   its time in the rolling window only until the next one (see health.ts).
 * - The supervisor's crash loop outranks the probes at read time
 *   (`shownHealth`): the checks of a dead process say little, the supervisor
 *   knows why it stopped restarting it. The stored state is left alone, so
 *   when the process runs again the checks speak again.
 */
import type { InstanceProcess } from '../contract/http.js'
import type { HealthState } from '../contract/constants.js'

/** The supervisor's view of an instance's process, as GET /instances serves it (the contract's type). */
export type { InstanceProcess }

export interface HealthRecord {
  readonly state: HealthState
  /** Birth seen and no Will since. */
  readonly connected: boolean
  /** Finishing its work, taking no more. */
  readonly draining: boolean
  /** The bus session of the last birth (only a birth opens one: registry.ts), or of a status applied before any. */
  readonly session: number | null
  /** Probes missed in a row. */
  readonly misses: number
  /** Probes answered in a row. */
  readonly passes: number
  readonly reason: string | null
  /** The session the last answered probe was on: a new one means a restart (a warm-up answer). */
  readonly answeredSession: number | null
  readonly process: InstanceProcess | null
}

/** An instance the hub has not heard from. */
export const INITIAL_HEALTH: HealthRecord = {
  state: 'offline', connected: false, draining: false, session: null, misses: 0, passes: 0, reason: null, answeredSession: null, process: null,
}

/**
 * An `adapter: exec` instance: the hub's own runner (coordinator/exec-adapter.ts),
 * online and connected while the hub runs. Nothing probes it, and a status on
 * the bus for its id is ignored (registry.ts): only the hub speaks for it.
 */
export const HOSTED_HEALTH: HealthRecord = { ...INITIAL_HEALTH, state: 'online', connected: true }

/** The hysteresis thresholds (config `health`). */
export interface HealthPolicy {
  readonly missesBeforeOffline: number
  readonly passesBeforeOnline: number
}

/** For a ping over the bus: the session it was sent on. HTTP probes leave it out. */
interface ProbeOrigin {
  readonly pingSession?: number | null
  /** Whether the instance counted as connected when the ping went out (default true). */
  readonly pingConnected?: boolean
}

export type StatusEvent =
  | { readonly kind: 'birth'; readonly session: number }
  | { readonly kind: 'draining'; readonly session: number }
  /** A Last Will or an offline status. */
  | { readonly kind: 'will'; readonly session: number }
  | { readonly kind: 'error'; readonly session: number; readonly error?: string | undefined }

export type ProbeEvent =
  | ({ readonly kind: 'probe-pass'; readonly ms: number } & ProbeOrigin)
  /** Answered, slower than `health.degradedAfter`. */
  | ({ readonly kind: 'probe-slow'; readonly ms: number } & ProbeOrigin)
  /** Answered with an error (an HTTP status other than 2xx). */
  | ({ readonly kind: 'probe-erroring'; readonly ms: number; readonly reason: string } & ProbeOrigin)
  /** No answer: refused, timed out, or the monitor stopped. */
  | ({ readonly kind: 'probe-miss'; readonly reason: string } & ProbeOrigin)

/** The supervisor's child state for this instance (`error`: a crash loop, no more restarts). */
export type ProcessEvent = { readonly kind: 'process'; readonly process: InstanceProcess | null }

export type HealthEvent = StatusEvent | ProbeEvent | ProcessEvent
export type HealthEventKind = HealthEvent['kind']

export const HEALTH_EVENTS = ['birth', 'draining', 'will', 'error', 'probe-pass', 'probe-slow', 'probe-erroring', 'probe-miss', 'process'] as const satisfies readonly HealthEventKind[]

/** The order docs/topics.md prints the states in. */
export const HEALTH_TABLE_STATES = ['online', 'degraded', 'timeout', 'offline', 'error'] as const satisfies readonly HealthState[]

type Row = { readonly to: Readonly<Record<HealthState, readonly HealthState[]>>; readonly why: string }

const every = (to: HealthState): Row['to'] => ({ online: [to], degraded: [to], timeout: [to], offline: [to], error: [to] })
/** An answer: up again from timeout / offline only after enough passes; `error` waits for a status. */
const answered = (to: HealthState): Row['to'] => ({ online: [to], degraded: [to], timeout: ['timeout', to], offline: ['offline', to], error: ['error'] })

/** For each event, the states it can lead to from each state (the counters and policy pick one). */
export const HEALTH_TABLE: Readonly<Record<HealthEventKind, Row>> = {
  birth: { to: every('online'), why: 'an `online` status: proof of life, online at once; misses reset' },
  draining: { to: every('online'), why: 'a `draining` status: online but taking no more work (reason `draining`)' },
  will: { to: every('offline'), why: 'the Last Will or an `offline` status: disconnected' },
  error: { to: every('error'), why: 'an `error` status: the instance says it is broken (reason: its `error`)' },
  'probe-pass': { to: answered('online'), why: 'an answer in time; from timeout or offline only after `passesBeforeOnline` in a row; an answer to a ping sent after a Will reconnects the instance' },
  'probe-slow': { to: answered('degraded'), why: 'an answer slower than `degradedAfter` (reason `slow: N ms`); as probe-pass' },
  'probe-erroring': { to: answered('degraded'), why: 'an HTTP answer other than 2xx (reason `HTTP 503`); as probe-pass' },
  'probe-miss': {
    to: { online: ['timeout', 'offline'], degraded: ['timeout', 'offline'], timeout: ['timeout', 'offline'], offline: ['offline'], error: ['timeout', 'offline'] },
    why: 'no answer: timeout, offline after `missesBeforeOffline` in a row; passes reset',
  },
  process: {
    to: { online: ['online'], degraded: ['degraded'], timeout: ['timeout'], offline: ['offline'], error: ['error'] },
    why: 'the supervisor reports the process: kept beside the state; while it is `error` (a crash loop) the instance is shown as error with the supervisor\'s reason',
  },
}

export interface HealthStep {
  readonly next: HealthRecord
  readonly from: HealthState
  /** A status from an older session, or a ping answer from another one: `next` is the input, untouched. */
  readonly stale: boolean
  /** `next.state` differs from `from`. */
  readonly changed: boolean
  readonly becameOffline: boolean
  /** Connected and not offline now, and not before (a birth of an instance that was down or new). */
  readonly cameUp: boolean
  /** An answered probe whose time is a warm-up time (see the header). */
  readonly warmUp: boolean
}

const isUp = (h: HealthRecord): boolean => h.connected && h.state !== 'offline'

function step(prev: HealthRecord, next: HealthRecord, extra: { stale?: boolean; warmUp?: boolean } = {}): HealthStep {
  return {
    next,
    from: prev.state,
    stale: extra.stale ?? false,
    changed: next.state !== prev.state,
    becameOffline: prev.state !== 'offline' && next.state === 'offline',
    cameUp: !isUp(prev) && isUp(next),
    warmUp: extra.warmUp ?? false,
  }
}

function applyStatus(h: HealthRecord, event: StatusEvent): HealthRecord {
  const session = event.session
  switch (event.kind) {
    case 'birth':
    case 'draining': {
      const draining = event.kind === 'draining'
      return { ...h, session, connected: true, state: 'online', draining, misses: 0, reason: draining ? 'draining' : null }
    }
    case 'will':
      return { ...h, session, connected: false, draining: false, state: 'offline', reason: 'last will or offline status' }
    case 'error':
      return { ...h, session, connected: true, state: 'error', reason: event.error ?? 'instance reported an error' }
  }
}

function applyProbe(h: HealthRecord, event: ProbeEvent, policy: HealthPolicy): { next: HealthRecord; warmUp: boolean } {
  if (event.kind === 'probe-miss') {
    const misses = h.misses + 1
    const state = h.state === 'offline' ? 'offline' : misses >= policy.missesBeforeOffline ? 'offline' : 'timeout'
    return { next: { ...h, passes: 0, misses, reason: event.reason, state }, warmUp: false }
  }
  const warmUp = h.passes === 0 || h.answeredSession !== h.session
  const passes = h.passes + 1
  const answeredNow = { ...h, misses: 0, passes, answeredSession: h.session }
  const recovering = h.state === 'offline' || h.state === 'timeout'
  if (h.state === 'error' || (recovering && passes < policy.passesBeforeOnline)) return { next: answeredNow, warmUp }
  switch (event.kind) {
    case 'probe-pass':
      return { next: { ...answeredNow, state: 'online', reason: null }, warmUp }
    case 'probe-slow':
      return { next: { ...answeredNow, state: 'degraded', reason: `slow: ${Math.round(event.ms)} ms` }, warmUp }
    case 'probe-erroring':
      return { next: { ...answeredNow, state: 'degraded', reason: event.reason }, warmUp }
  }
}

/** Status and process events need no policy; probe events do. */
export function nextHealth(state: HealthRecord, event: StatusEvent | ProcessEvent, policy?: HealthPolicy): HealthStep
export function nextHealth(state: HealthRecord, event: HealthEvent, policy: HealthPolicy): HealthStep
export function nextHealth(state: HealthRecord, event: HealthEvent, policy?: HealthPolicy): HealthStep {
  switch (event.kind) {
    case 'birth':
    case 'draining':
    case 'will':
    case 'error':
      if (state.session !== null && event.session < state.session) return step(state, state, { stale: true })
      return step(state, applyStatus(state, event))
    case 'process':
      return step(state, { ...state, process: event.process })
    case 'probe-pass':
    case 'probe-slow':
    case 'probe-erroring':
    case 'probe-miss': {
      if (policy === undefined) throw new TypeError(`nextHealth: a ${event.kind} needs the health policy`)
      if (event.pingSession !== undefined && (state.session !== event.pingSession || state.connected !== (event.pingConnected ?? true))) return step(state, state, { stale: true })
      const { next, warmUp } = applyProbe(state, event, policy)
      // A ping sent after the Will and answered: the instance is on the bus now, whatever the
      // Will said (a dead connection's Will published late, after the live one's birth).
      const revived = event.pingConnected === false && event.kind !== 'probe-miss'
      return step(state, revived ? { ...next, connected: true } : next, { warmUp })
    }
  }
}

/** What GET /instances and the dashboard show: a crash loop outranks what health checks of a dead process say. */
export function shownHealth(h: HealthRecord): { state: HealthState; reason: string | null } {
  if (h.process?.state === 'error') return { state: 'error', reason: h.process.reason }
  return { state: h.state, reason: h.reason }
}
