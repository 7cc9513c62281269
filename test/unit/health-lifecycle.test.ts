/**
 * An instance's health as a pure function, with plain values: every event
 * from every state (each lands in a state the table lists, and each listed
 * state is reached for some counters and policy), the session, hysteresis,
 * warm-up and crash-loop rules, the registry's use of them, and the table
 * as docs/topics.md prints it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { HEALTH_STATES, type HealthState } from '../../src/contract/constants.js'
import {
  HEALTH_EVENTS, HEALTH_TABLE, HEALTH_TABLE_STATES, INITIAL_HEALTH, nextHealth, shownHealth,
  type HealthEvent, type HealthEventKind, type HealthPolicy, type HealthRecord, type HealthStep, type InstanceProcess,
} from '../../src/coordinator/health-lifecycle.js'
import { Registry } from '../../src/coordinator/registry.js'
import { ROOT } from '../helpers/hub.js'

const policy: HealthPolicy = { missesBeforeOffline: 3, passesBeforeOnline: 2 }
const crashLoop: InstanceProcess = { state: 'error', pid: null, restarts: 5, reason: 'crash loop: 6 exits in 60000 ms' }
const running: InstanceProcess = { state: 'running', pid: 4242, restarts: 1, reason: null }

/** Frozen, so that a step that edited its input would throw. */
function record(state: HealthState, fields: Partial<HealthRecord> = {}): HealthRecord {
  return Object.freeze({ ...INITIAL_HEALTH, state, connected: state !== 'offline', session: 1, answeredSession: 1, ...fields })
}

/** One representative event of each kind, none of them stale for a record on session 1. */
const sample: Record<HealthEventKind, readonly HealthEvent[]> = {
  birth: [{ kind: 'birth', session: 1 }, { kind: 'birth', session: 2 }],
  draining: [{ kind: 'draining', session: 1 }, { kind: 'draining', session: 2 }],
  will: [{ kind: 'will', session: 1 }, { kind: 'will', session: 2 }],
  error: [{ kind: 'error', session: 1, error: 'disk full' }, { kind: 'error', session: 2 }],
  'probe-pass': [{ kind: 'probe-pass', ms: 1.5 }],
  'probe-slow': [{ kind: 'probe-slow', ms: 900.4 }],
  'probe-erroring': [{ kind: 'probe-erroring', ms: 2, reason: 'HTTP 503' }],
  'probe-miss': [{ kind: 'probe-miss', reason: 'connect ECONNREFUSED 127.0.0.1:6000' }],
  process: [{ kind: 'process', process: crashLoop }, { kind: 'process', process: running }, { kind: 'process', process: null }],
}

/** Counters and thresholds a record in any state may carry. */
const counters = [0, 1, 2, 3]
const policies: HealthPolicy[] = [{ missesBeforeOffline: 1, passesBeforeOnline: 1 }, { missesBeforeOffline: 2, passesBeforeOnline: 2 }, policy]

test('the table has a row for every event and a column for every health state', () => {
  assert.deepEqual([...HEALTH_EVENTS].sort(), Object.keys(HEALTH_TABLE).sort())
  assert.deepEqual([...HEALTH_TABLE_STATES].sort(), [...HEALTH_STATES].sort())
})

for (const kind of HEALTH_EVENTS) {
  for (const from of HEALTH_TABLE_STATES) {
    const to = HEALTH_TABLE[kind].to[from]
    test(`${kind} from ${from}: lands in ${to.join(' or ')}, each of them reachable`, () => {
      const reached = new Set<HealthState>()
      for (const event of sample[kind]) {
        for (const misses of counters) {
          for (const passes of counters) {
            for (const connected of [true, false]) {
              for (const p of policies) {
                const before = record(from, { misses, passes, connected })
                const step = nextHealth(before, event, p)
                assert.equal(step.stale, false)
                assert.equal(step.from, from)
                assert.ok(to.includes(step.next.state), `${kind} from ${from} (misses ${misses}, passes ${passes}, policy ${JSON.stringify(p)}) gave ${step.next.state}`)
                assert.equal(step.changed, step.next.state !== from)
                assert.equal(step.becameOffline, from !== 'offline' && step.next.state === 'offline')
                reached.add(step.next.state)
              }
            }
          }
        }
      }
      assert.deepEqual([...reached].sort(), [...to].sort(), 'the table lists no state the event cannot lead to')
    })
  }
}

test('a status from an older session than the current one is stale, from every state; the same or a newer one is not', () => {
  for (const from of HEALTH_TABLE_STATES) {
    for (const kind of ['birth', 'draining', 'will', 'error'] as const) {
      const before = record(from, { session: 5 })
      const stale = nextHealth(before, { kind, session: 4 })
      assert.equal(stale.stale, true, `${kind} of session 4 after 5`)
      assert.equal(stale.next, before, 'a stale status leaves the record as it was')
      assert.equal(stale.changed, false)
      assert.equal(nextHealth(before, { kind, session: 5 }).stale, false)
      assert.equal(nextHealth(before, { kind, session: 6 }).next.session, 6)
    }
  }
  assert.equal(nextHealth(INITIAL_HEALTH, { kind: 'birth', session: 0 }).stale, false, 'an instance never heard from takes any session')
})

test('a birth is proof of life: online at once from offline, misses reset, passes kept', () => {
  const lost = record('offline', { connected: false, misses: 4, passes: 0, reason: 'no heartbeat within 5000 ms' })
  const step = nextHealth(lost, { kind: 'birth', session: 2 })
  assert.deepEqual(step.next, { ...lost, state: 'online', connected: true, session: 2, misses: 0, reason: null })
  assert.deepEqual([step.changed, step.cameUp], [true, true])
  assert.equal(nextHealth(record('online'), { kind: 'birth', session: 1 }).cameUp, false, 'a birth of an instance already up')
  assert.equal(nextHealth(record('timeout'), { kind: 'birth', session: 1 }).cameUp, false, 'connected and in timeout counts as up')
})

test('draining: online, taking no more, reason draining; the next birth clears it; a Will ends it', () => {
  const draining = nextHealth(record('degraded', { reason: 'slow: 900 ms' }), { kind: 'draining', session: 1 }).next
  assert.deepEqual([draining.state, draining.draining, draining.reason, draining.connected], ['online', true, 'draining', true])
  const back = nextHealth(draining, { kind: 'birth', session: 2 }).next
  assert.deepEqual([back.draining, back.reason], [false, null])
  const gone = nextHealth(draining, { kind: 'will', session: 1 })
  assert.deepEqual([gone.next.state, gone.next.draining, gone.next.connected, gone.next.reason], ['offline', false, false, 'last will or offline status'])
  assert.equal(gone.becameOffline, true)
})

test('an error status: connected, in error with its reason or a default; draining and counters kept', () => {
  const before = record('online', { draining: true, misses: 1, passes: 2 })
  const said = nextHealth(before, { kind: 'error', session: 1, error: 'disk full' }).next
  assert.deepEqual(said, { ...before, state: 'error', reason: 'disk full' })
  assert.equal(nextHealth(before, { kind: 'error', session: 1 }).next.reason, 'instance reported an error')
})

/** Folds events in order, as the hub would receive them. */
function run(from: HealthRecord, events: readonly HealthEvent[], p: HealthPolicy = policy): HealthStep[] {
  const steps: HealthStep[] = []
  let h = from
  for (const event of events) {
    const s = nextHealth(h, event, p)
    steps.push(s)
    h = s.next
  }
  return steps
}

const pass = { kind: 'probe-pass', ms: 1 } as const satisfies HealthEvent
const miss = { kind: 'probe-miss', reason: 'no heartbeat within 5000 ms' } as const satisfies HealthEvent

test('hysteresis: timeout until missesBeforeOffline misses in a row, then offline until passesBeforeOnline passes in a row', () => {
  const steps = run(record('online'), [miss, miss, miss, miss, pass, miss, pass, pass, pass])
  assert.deepEqual(steps.map((s) => s.next.state), ['timeout', 'timeout', 'offline', 'offline', 'offline', 'offline', 'offline', 'online', 'online'])
  assert.deepEqual(steps.map((s) => [s.next.misses, s.next.passes]), [[1, 0], [2, 0], [3, 0], [4, 0], [0, 1], [1, 0], [0, 1], [0, 2], [0, 3]])
  assert.equal(steps[2]?.becameOffline, true)
  assert.equal(steps[7]?.changed, true)
  assert.equal(steps[3]?.next.reason, 'no heartbeat within 5000 ms', 'a miss while offline still says why')
  const fromTimeout = run(record('online'), [miss, pass, pass])
  assert.deepEqual(fromTimeout.map((s) => s.next.state), ['timeout', 'timeout', 'online'], 'timeout, too, needs the passes')
  assert.equal(fromTimeout[2]?.next.reason, null)
})

test('slow and erroring answers: degraded with the reason; the next answer in time is online again', () => {
  const steps = run(record('online'), [{ kind: 'probe-slow', ms: 900.6 }, { kind: 'probe-erroring', ms: 3, reason: 'HTTP 503' }, pass])
  assert.deepEqual(steps.map((s) => [s.next.state, s.next.reason]), [['degraded', 'slow: 901 ms'], ['degraded', 'HTTP 503'], ['online', null]])
})

test('an instance in error stays there whatever it answers (passes counted, misses reset); misses take it to timeout', () => {
  const broken = record('error', { misses: 2, reason: 'disk full' })
  const answered = run(broken, [{ kind: 'probe-slow', ms: 900 }, pass, pass])
  assert.deepEqual(answered.map((s) => [s.next.state, s.next.reason, s.next.misses, s.next.passes]), [['error', 'disk full', 0, 1], ['error', 'disk full', 0, 2], ['error', 'disk full', 0, 3]])
  assert.deepEqual(nextHealth(broken, miss, policy).next.state, 'offline', 'its third miss in a row')
  assert.deepEqual(nextHealth(record('error'), miss, policy).next.state, 'timeout')
})

test('warm-up answers: the first of all, the first after a miss, the first on a new session; never a miss', () => {
  const fresh = nextHealth(INITIAL_HEALTH, { kind: 'birth', session: 1 }).next
  const steps = run(fresh, [pass, pass, miss, pass, pass, { kind: 'birth', session: 2 }, { kind: 'probe-slow', ms: 900 }, pass, { kind: 'birth', session: 2 }, pass])
  assert.deepEqual(steps.map((s) => s.warmUp), [true, false, false, true, false, false, true, false, false, false])
  assert.equal(steps.at(-1)?.next.answeredSession, 2)
})

test('a ping answer counts only for the session it was sent on, while connected; an HTTP answer always counts', () => {
  const up = record('timeout', { session: 3, misses: 1 })
  assert.equal(nextHealth(up, { kind: 'probe-pass', ms: 1, pingSession: 3 }, policy).stale, false)
  for (const event of [{ kind: 'probe-pass', ms: 1, pingSession: 2 }, { kind: 'probe-miss', reason: 'no heartbeat within 5000 ms', pingSession: 2 }] as const) {
    const step = nextHealth(up, event, policy)
    assert.deepEqual([step.stale, step.next], [true, up], `${event.kind} from an older session`)
  }
  const gone = record('offline', { connected: false, session: 3 })
  assert.equal(nextHealth(gone, { kind: 'probe-miss', reason: 'x', pingSession: 3 }, policy).stale, true, 'a Will came while the ping was out')
  assert.equal(nextHealth(gone, { kind: 'probe-pass', ms: 1 }, policy).next.passes, 1, 'an HTTP instance need not be on the bus')
})

test('a ping sent after a Will and answered reconnects the instance; one sent before it does not', () => {
  const gone = record('offline', { connected: false, session: 3 })
  const revived = nextHealth(gone, { kind: 'probe-pass', ms: 1, pingSession: 3, pingConnected: false }, { ...policy, passesBeforeOnline: 1 })
  assert.deepEqual([revived.stale, revived.next.connected, revived.next.state], [false, true, 'online'])
  const early = nextHealth(gone, { kind: 'probe-pass', ms: 1, pingSession: 3, pingConnected: true }, policy)
  assert.deepEqual([early.stale, early.next], [true, gone], 'sent while it was connected: the Will is newer')
  const unanswered = nextHealth(gone, { kind: 'probe-miss', reason: 'no heartbeat within 5000 ms', pingSession: 3, pingConnected: false }, policy)
  assert.deepEqual([unanswered.next.connected, unanswered.next.state], [false, 'offline'])
  const strict = nextHealth(gone, { kind: 'probe-pass', ms: 1, pingSession: 3, pingConnected: false }, policy)
  assert.deepEqual([strict.next.connected, strict.next.state], [true, 'offline'], 'connected again, online after enough passes')
})

test('the supervisor\'s crash loop is shown as error with its reason; the stored state and reason stay for when it runs again', () => {
  const checked = record('offline', { reason: 'connect ECONNREFUSED 127.0.0.1:5000' })
  const looping = nextHealth(checked, { kind: 'process', process: crashLoop })
  assert.deepEqual([looping.next.state, looping.next.reason, looping.changed, looping.next.process], ['offline', checked.reason, false, crashLoop])
  assert.deepEqual(shownHealth(looping.next), { state: 'error', reason: crashLoop.reason })
  const afterMiss = nextHealth(looping.next, miss, policy).next
  assert.deepEqual(shownHealth(afterMiss), { state: 'error', reason: crashLoop.reason }, 'checks of a dead process do not hide the crash loop')
  const again = nextHealth(afterMiss, { kind: 'process', process: running }).next
  assert.deepEqual(shownHealth(again), { state: 'offline', reason: miss.reason })
  for (const state of HEALTH_TABLE_STATES) assert.deepEqual(shownHealth(record(state, { reason: 'r' })), { state, reason: 'r' }, 'unsupervised: as stored')
})

test('the registry: outcomes of statuses and the crash loop in the view, without a hub', () => {
  const registry = new Registry([{ id: 'c1' }], 4)
  assert.equal(registry.applyStatus('nobody', { state: 'offline', session: 1 }, 10), 'stale', 'an unknown id joins only by a birth')
  assert.equal(registry.get('nobody'), undefined)
  assert.equal(registry.applyStatus('scribe', { state: 'online', session: 1, capabilities: ['summarize'] }, 10), 'joined')
  assert.equal(registry.applyStatus('c1', { state: 'online', session: 7 }, 20), 'online')
  assert.equal(registry.applyStatus('c1', { state: 'online', session: 7, concurrency: 2 }, 30), 'unchanged')
  assert.equal(registry.applyStatus('c1', { state: 'offline', session: 6 }, 40), 'stale')
  const c1 = registry.get('c1')!
  assert.deepEqual([c1.state, c1.concurrency, c1.lastSeenAt], ['online', 2, 30], 'a stale Will is not a sign of life either')
  assert.equal(registry.applyStatus('c1', { state: 'offline', session: 7 }, 50), 'offline')
  // Only a birth opens a session: an error or draining status for a newer one is refused (issue #14, forged with 99999999999999).
  for (const state of ['error', 'draining', 'offline'] as const) assert.equal(registry.applyStatus('c1', { state, session: 8, error: 'forged' }, 55), 'unknown-session', state)
  assert.deepEqual([c1.state, c1.session, c1.lastSeenAt], ['offline', 7, 50], 'a refused status changes nothing')
  assert.equal(registry.applyStatus('c1', { state: 'error', session: 7, error: 'disk full' }, 60), 'error')
  assert.deepEqual([c1.state, c1.reason, c1.connected], ['error', 'disk full', true])
  // Before any birth (a hub that remembers none), a status applies but its number is not kept: the next real birth is not stale.
  const fresh = new Registry([{ id: 'c2' }], 4)
  assert.equal(fresh.applyStatus('c2', { state: 'draining', session: 99_999_999_999_999 }, 10), 'online')
  assert.deepEqual([fresh.get('c2')?.draining, fresh.get('c2')?.session], [true, null])
  assert.equal(fresh.applyStatus('c2', { state: 'online', session: 5 }, 20), 'unchanged')
  assert.deepEqual([fresh.get('c2')?.draining, fresh.get('c2')?.session], [false, 5])
  c1.process = crashLoop
  assert.deepEqual([c1.view().state, c1.view().reason, c1.state], ['error', crashLoop.reason, 'error'])
  registry.applyStatus('c1', { state: 'online', session: 9 }, 70)
  assert.deepEqual([c1.view().state, c1.view().reason, c1.view().process], ['error', crashLoop.reason, crashLoop], 'a birth does not end the crash loop the supervisor reports')
  c1.process = running
  assert.deepEqual([c1.view().state, c1.view().reason], ['online', null])
})

test('the registry after a restart: remembered births make each session known again, and a joined instance known, offline', () => {
  const registry = new Registry([{ id: 'c1' }], 4, 1)
  registry.restore([
    { id: 'c1', session: 7, profile: {} },
    { id: 'scribe', session: 3, profile: { capabilities: ['summarize'], role: 'writer', concurrency: 2 } },
    { id: 'one-too-many', session: 1, profile: {} },
  ], 100)
  const scribe = registry.get('scribe')!
  assert.deepEqual([scribe.source, scribe.state, scribe.connected, scribe.session, scribe.capabilities, scribe.role, scribe.concurrency, scribe.lastSeenAt], ['joined', 'offline', false, 3, ['summarize'], 'writer', 2, 100])
  assert.equal(registry.get('one-too-many'), undefined, 'limits.maxJoinedInstances holds for remembered births too')
  assert.deepEqual([registry.get('c1')?.session, registry.get('c1')?.state], [7, 'offline'])
  // A forged retained offline, the first status a restarted hub sees: refused, as while it runs.
  assert.equal(registry.applyStatus('scribe', { state: 'offline', session: 99_999_999_999_999 }, 110), 'unknown-session')
  assert.equal(registry.applyStatus('c1', { state: 'offline', session: 99_999_999_999_999 }, 110), 'unknown-session')
  // Its own Will, published by a restarted broker, still applies; its next birth too.
  assert.equal(registry.applyStatus('scribe', { state: 'offline', session: 3 }, 120), 'offline')
  assert.equal(registry.applyStatus('scribe', { state: 'online', session: 3 }, 130), 'online')
})

/** The table as docs/topics.md shows it. */
function tableMarkdown(): string {
  const rows = HEALTH_EVENTS.map((e) => `| \`${e}\` | ${HEALTH_TABLE_STATES.map((s) => HEALTH_TABLE[e].to[s].join(', ')).join(' | ')} | ${HEALTH_TABLE[e].why} |`)
  return [`| event | ${HEALTH_TABLE_STATES.join(' | ')} | when |`, `|---|${HEALTH_TABLE_STATES.map(() => '---|').join('')}---|`, ...rows].join('\n')
}

test('docs/topics.md prints the health table as the code has it', () => {
  const docs = readFileSync(join(ROOT, 'docs/topics.md'), 'utf8')
  assert.ok(docs.includes(tableMarkdown()), `docs/topics.md must contain, verbatim:\n\n${tableMarkdown()}\n`)
})
