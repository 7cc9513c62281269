/**
 * What can happen to a task leg, in one place: named transitions as pure
 * functions over a leg and `now`, checked against one table of allowed
 * moves. The scheduler decides *when* (ordering, I/O, timers); this module
 * decides *what* a leg becomes. Nothing here reads a clock, draws a random
 * number or touches the store: the caller passes `now` and the lease token.
 *
 *   queued ──assign──▶ assigned ──start──▶ running ──renew──▶ running
 *     ▲                  │  │                 │  │
 *     └──retry (backoff)─┘  └──complete / fail / lose / cancel──┘
 *   assigned | running ──ask──▶ needs_input ──answer──▶ running
 *                                  └──lose / cancel (the wait limit, the instance gone)
 *   failed | dead | cancelled ──replay──▶ queued (attempts from zero)
 *   queued | assigned | running | needs_input ──bury──▶ dead (the hub cannot store or send it)
 *
 * `fail` and `lose` put the leg back in the queue while attempts remain
 * (after the backoff, preferring an instance that has not tried it); a
 * failure the worker marks non-retryable ends the leg at once, as Temporal's
 * `nonRetryableErrorTypes` do. When attempts run out a failed report ends in
 * `failed`, a lost lease or instance in `dead` (a dead letter).
 *
 * A leg waiting for a person (`needs_input`) keeps its lease token (the
 * answer goes to that attempt) but no lease deadline: a person may take
 * hours, and the instance is still there, holding the work. What ends the
 * wait instead is the instance going away, a cancel, or `tasks.inputTimeout`
 * measured from `input.askedAt` (the scheduler's sweep).
 */
import type { TaskState } from '../contract/constants.js'
import type { Assignment } from '../contract/payloads/task.js'

export type LegState = TaskState

/** Every transition's name. */
export const LEG_TRANSITIONS = ['assign', 'start', 'renew', 'ask', 'answer', 'complete', 'fail', 'lose', 'cancel', 'bury', 'replay'] as const
export type LegTransition = (typeof LEG_TRANSITIONS)[number]

/** From which states each transition may be taken, and the states it can lead to. */
export const LEG_TABLE: Readonly<Record<LegTransition, { readonly from: readonly LegState[]; readonly to: readonly LegState[]; readonly why: string }>> = {
  assign: { from: ['queued'], to: ['assigned'], why: 'the router picked an available instance; a new lease token, attempts + 1' },
  start: { from: ['assigned', 'running'], to: ['running'], why: 'the instance reported `started`; the lease is renewed' },
  renew: { from: ['assigned', 'running'], to: ['running'], why: 'a `progress` report; the lease is renewed, the progress kept' },
  ask: { from: ['assigned', 'running'], to: ['needs_input'], why: 'a `needs_input` report: the question is kept; the lease token stays, the lease timer stops (a person never expires by lease)' },
  answer: { from: ['needs_input'], to: ['running'], why: 'POST /tasks/:id/respond or `task/{id}/respond`: the answer is kept and sent to the instance; the lease is renewed from now' },
  complete: { from: ['assigned', 'running'], to: ['completed'], why: 'a `completed` report with the current lease token' },
  fail: { from: ['assigned', 'running'], to: ['queued', 'failed'], why: 'a `failed` report: retried after backoff while attempts remain and it is retryable, else failed' },
  lose: { from: ['assigned', 'running', 'needs_input'], to: ['queued', 'dead'], why: 'the lease expired, the wait for input ran past `tasks.inputTimeout`, or the instance went offline or restarted: retried while attempts remain, else dead' },
  cancel: { from: ['queued', 'assigned', 'running', 'needs_input'], to: ['cancelled'], why: 'POST /tasks/:id/cancel' },
  bury: { from: ['queued', 'assigned', 'running', 'needs_input'], to: ['dead'], why: 'the hub could not store or send the task (its record fails to serialise, the store refuses it): a dead letter at once, with the reason, so dispatch goes on with the others' },
  replay: { from: ['failed', 'dead', 'cancelled'], to: ['queued'], why: 'POST /tasks/:id/retry: attempts start over' },
}

export class LegTransitionError extends Error {
  constructor(readonly transition: LegTransition, readonly from: LegState) {
    super(`a leg in state ${from} cannot ${transition} (allowed from: ${LEG_TABLE[transition].from.join(', ')})`)
    this.name = 'LegTransitionError'
  }
}

/** The retry policy a leg is judged by: the task's and the config's. */
export interface RetryPolicy {
  readonly maxAttempts: number
  readonly backoff: { readonly baseMs: number; readonly factor: number; readonly maxMs: number }
}

function backoffMs(attempt: number, policy: RetryPolicy['backoff']): number {
  return Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, attempt - 1))
}

export function newLeg(targets: readonly string[], now: number): Assignment {
  return { targets: [...targets], state: 'queued', instance: null, attempts: 0, leaseToken: null, leaseExpiresAt: null, notBefore: now, tried: [] }
}

/** Held by an instance: assigned, running, or waiting there for a person's answer. */
export function isLegActive(leg: Assignment): boolean {
  return leg.state === 'assigned' || leg.state === 'running' || leg.state === 'needs_input'
}

export function isLegFinished(leg: Assignment): boolean {
  return leg.state === 'completed' || leg.state === 'failed' || leg.state === 'dead' || leg.state === 'cancelled'
}

function check(transition: LegTransition, leg: Assignment): void {
  if (!LEG_TABLE[transition].from.includes(leg.state)) throw new LegTransitionError(transition, leg.state)
}

export function assign(leg: Assignment, to: { instance: string; leaseToken: string; leaseMs: number }, now: number): Assignment {
  check('assign', leg)
  // A new attempt starts clean: the last one's error and question belong to it.
  const { error: _error, input: _input, ...rest } = leg
  return { ...rest, state: 'assigned', instance: to.instance, attempts: leg.attempts + 1, leaseToken: to.leaseToken, leaseExpiresAt: now + to.leaseMs }
}

export function start(leg: Assignment, leaseMs: number, now: number): Assignment {
  check('start', leg)
  return { ...leg, state: 'running', leaseExpiresAt: now + leaseMs }
}

export function renew(leg: Assignment, progress: unknown, leaseMs: number, now: number): Assignment {
  check('renew', leg)
  return { ...leg, state: 'running', leaseExpiresAt: now + leaseMs, ...(progress === undefined ? {} : { progress }) }
}

/** The lease deadline is dropped (not the token): the wait is bounded by `tasks.inputTimeout`, not the lease. */
export function ask(leg: Assignment, question: { question: string; choices?: readonly string[] | undefined }, now: number): Assignment {
  check('ask', leg)
  const input = { question: question.question, ...(question.choices === undefined ? {} : { choices: [...question.choices] }), askedAt: now }
  return { ...leg, state: 'needs_input', leaseExpiresAt: null, input }
}

/** The answer joins the question on the leg; the attempt goes on under a fresh lease. */
export function answer(leg: Assignment, value: unknown, leaseMs: number, now: number): Assignment {
  check('answer', leg)
  const asked = leg.input ?? { question: '', askedAt: now }
  return { ...leg, state: 'running', leaseExpiresAt: now + leaseMs, input: { ...asked, answer: value, answeredAt: now } }
}

/** When a leg waiting for input has waited long enough (`tasks.inputTimeout`; null: never), or null. */
export function inputDeadline(leg: Assignment, inputTimeoutMs: number | null): number | null {
  if (leg.state !== 'needs_input' || inputTimeoutMs === null || leg.input === undefined) return null
  return leg.input.askedAt + inputTimeoutMs
}

/** The lease token stays on the record: it names the attempt whose output this is. */
export function complete(leg: Assignment, output: unknown): Assignment {
  check('complete', leg)
  const { progress: _progress, ...rest } = leg
  return { ...rest, state: 'completed', output }
}

/** Back in the queue after the backoff, or ended in `final`; the holder joins `tried` (the router prefers others). */
function retryOrEnd(leg: Assignment, error: string, final: 'failed' | 'dead', retryable: boolean, policy: RetryPolicy, now: number): Assignment {
  const tried = leg.instance === null ? leg.tried : [...leg.tried.filter((i) => i !== leg.instance), leg.instance]
  const released = { ...leg, tried, error, leaseToken: null, leaseExpiresAt: null }
  if (!retryable || leg.attempts >= policy.maxAttempts) return { ...released, state: final }
  return { ...released, state: 'queued', instance: null, notBefore: now + backoffMs(leg.attempts, policy.backoff) }
}

export function fail(leg: Assignment, failure: { error: string; retryable: boolean }, policy: RetryPolicy, now: number): Assignment {
  check('fail', leg)
  return retryOrEnd(leg, failure.error, 'failed', failure.retryable, policy, now)
}

export function lose(leg: Assignment, reason: string, policy: RetryPolicy, now: number): Assignment {
  check('lose', leg)
  return retryOrEnd(leg, reason, 'dead', true, policy, now)
}

export function cancel(leg: Assignment): Assignment {
  check('cancel', leg)
  return { ...leg, state: 'cancelled', leaseToken: null, leaseExpiresAt: null }
}

/** Dead at once, whatever attempts remain: retrying cannot help a task the hub cannot store or send. */
export function bury(leg: Assignment, reason: string): Assignment {
  check('bury', leg)
  return { ...leg, state: 'dead', error: reason, leaseToken: null, leaseExpiresAt: null }
}

/** A finished leg starts over (attempts from zero); who tried it before is remembered. */
export function replay(leg: Assignment, now: number): Assignment {
  check('replay', leg)
  return { ...newLeg(leg.targets, now), tried: leg.tried }
}
