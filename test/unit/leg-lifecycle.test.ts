/**
 * The task-leg lifecycle as pure functions, with a fixed clock: every
 * transition from every state (allowed ones land in the table's targets,
 * the rest are refused), the retry and give-up rules, and the table as
 * docs/topics.md prints it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TASK_STATES } from '../../src/contract/constants.js'
import type { Assignment } from '../../src/contract/payloads/task.js'
import {
  LEG_TABLE, LEG_TRANSITIONS, LegTransitionError, answer, ask, assign, bury, cancel, complete, fail, inputDeadline, lose, newLeg, renew, replay, start,
  type LegState, type LegTransition, type RetryPolicy,
} from '../../src/coordinator/leg-lifecycle.js'
import { deriveState } from '../../src/coordinator/task-record.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { ROOT } from '../helpers/hub.js'

const NOW = 1_000_000
const policy: RetryPolicy = { maxAttempts: 3, backoff: { baseMs: 100, factor: 2, maxMs: 1000 } }
const lease = { instance: 'c1', leaseToken: 'token-1', leaseMs: 5000 }

/** A leg in `state`, as the scheduler would have left it there. */
function legIn(state: LegState, attempts = 1): Assignment {
  const base = newLeg(['c1', 'c2'], NOW)
  if (state === 'queued') return base
  // A leg waiting for input holds its token and its question, and no lease deadline.
  if (state === 'needs_input') return { ...base, state, instance: 'c1', attempts, leaseToken: 'token-1', leaseExpiresAt: null, input: { question: 'ship it?', askedAt: NOW - 10 } }
  return { ...base, state, instance: 'c1', attempts, leaseToken: 'token-1', leaseExpiresAt: NOW + 5000 }
}

const apply: Record<LegTransition, (leg: Assignment) => Assignment> = {
  assign: (leg) => assign(leg, lease, NOW),
  start: (leg) => start(leg, 5000, NOW),
  renew: (leg) => renew(leg, { step: 1 }, 5000, NOW),
  ask: (leg) => ask(leg, { question: 'which branch?', choices: ['main', 'dev'] }, NOW),
  answer: (leg) => answer(leg, 'main', 5000, NOW),
  complete: (leg) => complete(leg, 'done'),
  fail: (leg) => fail(leg, { error: 'boom', retryable: true }, policy, NOW),
  lose: (leg) => lose(leg, 'lease expired', policy, NOW),
  cancel: (leg) => cancel(leg),
  bury: (leg) => bury(leg, 'could not be stored'),
  replay: (leg) => replay(leg, NOW),
}

for (const transition of LEG_TRANSITIONS) {
  for (const state of TASK_STATES) {
    const allowed = LEG_TABLE[transition].from.includes(state)
    test(`${transition} from ${state}: ${allowed ? `lands in ${LEG_TABLE[transition].to.join(' or ')}` : 'refused'}`, () => {
      const leg = legIn(state)
      const before = structuredClone(leg)
      if (!allowed) {
        assert.throws(() => apply[transition](leg), (err: unknown) => err instanceof LegTransitionError && err.from === state && err.transition === transition)
      } else {
        const next = apply[transition](leg)
        assert.ok(LEG_TABLE[transition].to.includes(next.state), `${next.state} is one of ${LEG_TABLE[transition].to.join(', ')}`)
      }
      assert.deepEqual(leg, before, 'the input leg is never changed')
    })
  }
}

test('assign: a fresh lease from now, attempts + 1, a previous error cleared', () => {
  const next = assign({ ...legIn('queued'), attempts: 1, error: 'c2: lease expired' }, lease, NOW)
  assert.deepEqual([next.state, next.instance, next.attempts, next.leaseToken, next.leaseExpiresAt, next.error], ['assigned', 'c1', 2, 'token-1', NOW + 5000, undefined])
})

test('start and renew extend the lease from now; renew keeps the progress', () => {
  const started = start(legIn('assigned'), 7000, NOW + 10)
  assert.deepEqual([started.state, started.leaseExpiresAt], ['running', NOW + 7010])
  const renewed = renew(started, { pct: 50 }, 7000, NOW + 20)
  assert.deepEqual([renewed.leaseExpiresAt, renewed.progress], [NOW + 7020, { pct: 50 }])
  assert.equal(renew(renewed, undefined, 7000, NOW + 30).progress, renewed.progress, 'a renew without progress keeps the last one')
})

test('complete keeps the output and drops the progress', () => {
  const next = complete({ ...legIn('running'), progress: 'half' }, { answer: 42 })
  assert.deepEqual([next.state, next.output, next.progress], ['completed', { answer: 42 }, undefined])
})

test('a retryable failure goes back to the queue after the backoff, and the router is told who tried', () => {
  const first = fail(legIn('running', 1), { error: 'boom', retryable: true }, policy, NOW)
  assert.deepEqual([first.state, first.instance, first.notBefore, first.tried, first.error, first.leaseToken], ['queued', null, NOW + 100, ['c1'], 'boom', null])
  const second = fail({ ...assign(first, { ...lease, instance: 'c2' }, NOW) }, { error: 'again', retryable: true }, policy, NOW)
  assert.deepEqual([second.state, second.notBefore, second.tried], ['queued', NOW + 200, ['c1', 'c2']])
})

test('backoff is capped', () => {
  const leg = lose(legIn('running', 2), 'lease expired', { maxAttempts: 10, backoff: { baseMs: 800, factor: 2, maxMs: 1000 } }, NOW)
  assert.equal(leg.notBefore, NOW + 1000)
})

test('out of attempts: a failed report ends in failed, a lost lease in dead; the holder is kept', () => {
  const failed = fail(legIn('running', 3), { error: 'boom', retryable: true }, policy, NOW)
  assert.deepEqual([failed.state, failed.instance, failed.error, failed.leaseExpiresAt], ['failed', 'c1', 'boom', null])
  const dead = lose(legIn('assigned', 3), 'c1: went offline', policy, NOW)
  assert.deepEqual([dead.state, dead.instance, dead.error], ['dead', 'c1', 'c1: went offline'])
})

test('a non-retryable failure ends the leg at once, attempts left or not', () => {
  const next = fail(legIn('running', 1), { error: 'bad input', retryable: false }, policy, NOW)
  assert.deepEqual([next.state, next.attempts], ['failed', 1])
})

test('cancel releases the lease; replay starts over from zero attempts, remembering who tried', () => {
  const cancelled = cancel(legIn('running'))
  assert.deepEqual([cancelled.state, cancelled.leaseToken, cancelled.leaseExpiresAt], ['cancelled', null, null])
  const replayed = replay({ ...legIn('dead', 3), tried: ['c1', 'c2'] }, NOW + 50)
  assert.deepEqual(replayed, { ...newLeg(['c1', 'c2'], NOW + 50), tried: ['c1', 'c2'] })
})

test('ask keeps the lease token and the question, and stops the lease timer', () => {
  const asked = ask(legIn('running'), { question: 'deploy to prod?', choices: ['yes', 'no'] }, NOW + 5)
  assert.deepEqual([asked.state, asked.leaseToken, asked.leaseExpiresAt, asked.instance], ['needs_input', 'token-1', null, 'c1'])
  assert.deepEqual(asked.input, { question: 'deploy to prod?', choices: ['yes', 'no'], askedAt: NOW + 5 })
  assert.equal(ask(legIn('assigned'), { question: 'q' }, NOW).input?.choices, undefined, 'no choices: none kept')
})

test('answer resumes the same attempt under a lease renewed from now, keeping question and answer', () => {
  const asked = ask(legIn('running', 2), { question: 'deploy?' }, NOW)
  const resumed = answer(asked, { approve: true }, 7000, NOW + 60_000)
  assert.deepEqual([resumed.state, resumed.attempts, resumed.leaseToken, resumed.leaseExpiresAt], ['running', 2, 'token-1', NOW + 67_000])
  assert.deepEqual(resumed.input, { question: 'deploy?', askedAt: NOW, answer: { approve: true }, answeredAt: NOW + 60_000 })
})

test('the wait for input is bounded by inputTimeout from askedAt, not by the lease; null waits forever', () => {
  const asked = ask(legIn('running'), { question: 'q' }, NOW)
  assert.equal(inputDeadline(asked, 3000), NOW + 3000)
  assert.equal(inputDeadline(asked, null), null)
  assert.equal(inputDeadline(answer(asked, 'a', 5000, NOW + 1), 3000), null, 'an answered leg has no wait deadline')
  assert.equal(inputDeadline(legIn('running'), 3000), null)
})

test('losing a leg that waits for input retries it as a new attempt without the old question; cancel releases it', () => {
  const lost = lose(legIn('needs_input', 1), 'c1: no answer within tasks.inputTimeout', policy, NOW)
  assert.deepEqual([lost.state, lost.leaseToken, lost.tried], ['queued', null, ['c1']])
  const again = assign(lost, { ...lease, leaseToken: 'token-2' }, NOW)
  assert.deepEqual([again.attempts, again.input], [2, undefined])
  const cancelled = cancel(legIn('needs_input'))
  assert.deepEqual([cancelled.state, cancelled.leaseToken], ['cancelled', null])
})

/** Any transition the table allows, with its arguments, as a step of a random walk. */
const step = fc.constantFrom<LegTransition>(...LEG_TRANSITIONS)

test('property: along any walk through the table, a leg waiting for input holds its token and question and no lease; a running leg has a lease', () => {
  fc.assert(fc.property(fc.array(step, { maxLength: 40 }), (walk) => {
    let leg = newLeg(['c1'], NOW)
    for (const transition of walk) {
      if (!LEG_TABLE[transition].from.includes(leg.state)) continue
      leg = apply[transition](leg)
      if (leg.state === 'needs_input') {
        assert.notEqual(leg.leaseToken, null)
        assert.equal(leg.leaseExpiresAt, null)
        assert.equal(typeof leg.input?.question, 'string')
      }
      if (leg.state === 'running' || leg.state === 'assigned') assert.notEqual(leg.leaseExpiresAt, null)
    }
  }))
})

test('property: a task is needs_input exactly while one of its unfinished legs is', () => {
  const states = fc.constantFrom<LegState>(...TASK_STATES)
  fc.assert(fc.property(fc.array(states, { minLength: 1, maxLength: 4 }), (legStates) => {
    const task: TaskRecord = {
      id: 't', type: 'general', content: null, priority: 'normal', state: 'queued', strategy: 'all', createdAt: NOW, updatedAt: NOW, maxAttempts: 3,
      assignments: legStates.map((state) => legIn(state)),
    }
    deriveState(task)
    const finished = ['completed', 'failed', 'dead', 'cancelled']
    const waiting = legStates.includes('needs_input') && !legStates.every((s) => finished.includes(s))
    assert.equal(task.state === 'needs_input', waiting, `${legStates.join(',')} → ${task.state}`)
  }))
})

/** The table as docs/topics.md shows it. */
function tableMarkdown(): string {
  const rows = LEG_TRANSITIONS.map((t) => `| \`${t}\` | ${LEG_TABLE[t].from.join(', ')} | ${LEG_TABLE[t].to.join(', ')} | ${LEG_TABLE[t].why} |`)
  return ['| transition | from | to | when |', '|---|---|---|---|', ...rows].join('\n')
}

test('docs/topics.md prints the leg transition table as the code has it', () => {
  const docs = readFileSync(join(ROOT, 'docs/topics.md'), 'utf8')
  assert.ok(docs.includes(tableMarkdown()), `docs/topics.md must contain, verbatim:\n\n${tableMarkdown()}\n`)
})
