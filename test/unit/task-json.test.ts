/**
 * The hub serialises a task's summary once per change and splices its events
 * from it (src/coordinator/task-json.ts, issue #12). What leaves the hub must
 * not change with that: summaries and events are compared, byte for byte,
 * with what the plain construction gives (the summary as it was built before,
 * with object rest; the event as `taskEvent` serialised), over records that
 * carry every optional field, and a summary must follow every kind of change.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Assignment, LegSummary, TaskRecord, TaskSummary } from '../../src/contract/payloads/task.js'
import { contentFacts, preview, summarizeTask, taskEvent, taskEventJson } from '../../src/contract/task-summary.js'
import { assign, complete, fail, newLeg, renew, ask, answer } from '../../src/coordinator/leg-lifecycle.js'
import { TaskJson } from '../../src/coordinator/task-json.js'
import { deriveState } from '../../src/coordinator/task-record.js'

/** The summary as task-summary.ts built it before (object rest): the reference. */
function referenceSummary(task: TaskRecord): TaskSummary {
  const facts = contentFacts(task.content)
  const { content: _content, result, assignments, ...rest } = task
  const legs = assignments.map((leg): LegSummary => {
    const { output: _output, progress, input, ...fields } = leg
    const summary: LegSummary = progress === undefined ? fields : { ...fields, progressPreview: preview(progress) }
    if (input !== undefined) {
      const { answer: given, ...asked } = input
      summary.input = input.answeredAt === undefined ? asked : { ...asked, answerPreview: preview(given) }
    }
    return summary
  })
  const summary: TaskSummary = { ...rest, assignments: legs, contentPreview: facts.contentPreview, contentBytes: facts.contentBytes }
  if (result !== undefined) summary.resultPreview = preview(result)
  return summary
}

const policy = { maxAttempts: 3, backoff: { baseMs: 100, factor: 2, maxMs: 1000 } }

function record(content: unknown, legs: Assignment[], extra: Partial<TaskRecord> = {}): TaskRecord {
  return { id: 't1', type: 'general', content, priority: 'high', state: 'queued', strategy: 'all', createdAt: 1, updatedAt: 2, maxAttempts: 3, assignments: legs, ...extra }
}

/** Records with every optional field, at every stage a leg goes through. */
function records(): TaskRecord[] {
  const queued = newLeg(['c1'], 1)
  const assigned = assign(queued, { instance: 'c1', leaseToken: 'tok', leaseMs: 1000 }, 2)
  const progressed = renew(assigned, { step: 'p'.repeat(400), note: 'é😀' }, 1000, 3)
  const asked = ask(progressed, { question: 'Deploy?', choices: ['yes', 'no'] }, 4)
  const askedFree = ask(assigned, { question: 'Which?' }, 4)
  const answered = answer(asked, { pick: 'yes' }, 1000, 5)
  const failed = fail(progressed, { error: 'boom', retryable: true }, policy, 6)
  const dead = fail(assigned, { error: 'bad input', retryable: false }, policy, 6)
  const done = complete(answered, { out: 'o'.repeat(300) })
  return [
    record('x', [queued]),
    record(undefined, [queued]),
    record({ nested: ['a', 1, null], text: 'z'.repeat(500) }, [assigned]),
    record('ünïcödé 😀'.repeat(40), [progressed, asked, askedFree]),
    record(42, [answered, failed], { error: 'c2: boom' }),
    record(null, [dead], { state: 'failed', error: 'c1: bad input' }),
    record('x', [done], { state: 'completed', result: { out: 'o'.repeat(300) } }),
    record('x', [complete(assigned, null)], { state: 'completed', result: null }),
    record('x', [done, complete(assigned, 'two')], { state: 'completed', result: [{ instance: 'c1', output: 'one' }, { instance: 'c1', output: 'two' }] }),
  ]
}

test('a summary is the same JSON, byte for byte, as the one built with object rest', () => {
  for (const task of records()) {
    assert.equal(JSON.stringify(summarizeTask(task)), JSON.stringify(referenceSummary(task)), task.assignments.map((l) => l.state).join(','))
  }
})

test('an event spliced from its summary is the serialised event, byte for byte: content on admission, result at the end', () => {
  for (const task of records()) {
    const summary = JSON.stringify(summarizeTask(task))
    for (const admission of [true, false]) {
      const spliced = taskEventJson(task, summary, admission, JSON.stringify(task.content))
      assert.equal(spliced, JSON.stringify(taskEvent(task, admission)), `${task.state}, admission ${admission}`)
    }
  }
  // What the splice adds is what makes the event bigger than the summary, and only then.
  const [plain] = records()
  assert.ok(plain !== undefined)
  const summary = JSON.stringify(summarizeTask(plain))
  assert.equal(taskEventJson(plain, summary, false, '"x"'), summary)
  assert.deepEqual(JSON.parse(taskEventJson(plain, summary, true, '"x"')), { ...JSON.parse(summary), content: 'x' })
})

test('the cached summary follows every kind of change to the record', () => {
  const json = new TaskJson()
  const task = record({ big: 'b'.repeat(1000) }, [newLeg(['c1'], 1)], { strategy: 'least-loaded' })
  const fresh = (): string => JSON.stringify(summarizeTask(task))
  assert.equal((JSON.parse(json.admission(task)) as { content: { big: string } }).content.big, 'b'.repeat(1000))
  assert.equal(json.summary(task), fresh())
  const changes: [string, () => void][] = [
    ['leg replaced', () => { task.assignments[0] = assign(task.assignments[0] as Assignment, { instance: 'c1', leaseToken: 't', leaseMs: 10 }, 3); task.updatedAt = 3 }],
    ['state derived', () => deriveState(task)],
    ['same millisecond, leg replaced again', () => { task.assignments[0] = renew(task.assignments[0] as Assignment, 'half way', 10, 3) }],
    ['state set', () => { task.state = 'running' }],
    ['error added', () => { task.error = 'trouble' }],
    ['error removed', () => { delete task.error }],
    ['legs list replaced', () => { task.assignments = [...task.assignments, newLeg(['c2'], 4)] }],
    ['leg appended in place', () => { task.assignments.push(newLeg(['c3'], 5)) }],
    ['result and state', () => { task.assignments = [complete(task.assignments[0] as Assignment, 'done')]; deriveState(task) }],
  ]
  for (const [what, change] of changes) {
    const before = json.summary(task)
    change()
    const after = json.summary(task)
    assert.equal(after, fresh(), what)
    assert.notEqual(after, before, `${what}: the summary changed`)
    assert.equal(json.event(task), JSON.stringify(taskEvent(task, false)), `${what}: its event`)
  }
  // Unchanged, it says the same.
  assert.equal(json.summary(task), fresh())
  assert.equal((JSON.parse(json.event(task)) as { result: unknown }).result, 'done')
})
