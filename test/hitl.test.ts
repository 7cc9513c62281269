/**
 * Human in the loop (issue #11): an agent (the SDK, over real MQTT) asks a
 * person with `ctx.ask`; the task shows `needs_input` in GET /tasks, on the
 * bus and in its record; the answer (POST /tasks/:id/respond, the
 * `task/{id}/respond` topic by mosquitto_pub, or `trinity answer`) reaches the
 * same agent, which finishes on attempt 1. The lease does not run while a
 * person is asked; `tasks.inputTimeout` does, and a cancel rejects the ask.
 *
 * Two hubs: one that waits for answers forever (`inputTimeout: null`), one
 * whose wait limit is short. Both have a short lease, so a lease that kept
 * running while waiting would show as a second attempt.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { connectAgent, type Agent, type TaskContext } from '../src/agent/index.js'
import type { ErrorBody, TaskAnswered, TaskList } from '../src/contract/http.js'
import type { HubError } from '../src/contract/payloads/hub.js'
import type { TaskEvent, TaskRecord } from '../src/contract/payloads/task.js'
import { topicsFor } from '../src/contract/topics.js'
import type { Hub } from '../src/hub.js'
import { runCli, type CliRun } from './helpers/cli.js'
import { http, startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'

const topics = topicsFor()
const dir = tempDir()
/** Lease 1.5 s: several leases pass while a test waits for a person. */
const LEASE = '1500ms'
let hub: Hub
let limited: Hub
const agents: Agent[] = []
const clients: mqtt.MqttClient[] = []

/** What the asking handler saw, per task id. */
const seen = new Map<string, { attempt: number; rejected?: Error; aborted?: boolean }[]>()

/** Asks once per attempt (choices from the content), returns the answer; on attempt 2 and later returns without asking when told to. */
async function asking(content: unknown, ctx: TaskContext): Promise<unknown> {
  const { question, choices, askOnce } = content as { question: string; choices?: string[]; askOnce?: boolean }
  const tries = seen.get(ctx.taskId) ?? []
  seen.set(ctx.taskId, tries)
  const mine: { attempt: number; rejected?: Error; aborted?: boolean } = { attempt: ctx.attempt }
  tries.push(mine)
  if (askOnce === true && ctx.attempt > 1) return { attempt: ctx.attempt, answer: null }
  try {
    const answer = await ctx.ask(question, choices === undefined ? {} : { choices })
    return { attempt: ctx.attempt, answer }
  } catch (err) {
    mine.rejected = err as Error
    mine.aborted = ctx.signal.aborted
    throw err
  }
}

before(async () => {
  const routes = { approve_deploy: { targets: ['asker'] }, slow_job: { targets: ['asker'] }, fan_approve: { targets: ['asker', 'second'], strategy: 'all' }, drain_job: { targets: ['drainer'] } }
  hub = await startTestHub(await testConfig(`${dir.path}/a`, { routes, tasks: { lease: LEASE, inputTimeout: null } }))
  limited = await startTestHub(await testConfig(`${dir.path}/b`, { routes, tasks: { lease: LEASE, inputTimeout: '1s' } }))
  for (const h of [hub, limited]) {
    const agent = await connectAgent({
      id: 'asker', url: h.mqttUrl, handleSignals: false, heartbeatMs: 500,
      handlers: { approve_deploy: asking, fan_approve: asking, slow_job: (_content, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null))) },
    })
    agents.push(agent)
    await waitFor(() => h.coordinator.registry.get('asker')?.state === 'online', 30_000, 'asker online')
  }
  const second = await connectAgent({ id: 'second', url: hub.mqttUrl, handleSignals: false, heartbeatMs: 500, handlers: { fan_approve: asking } })
  agents.push(second)
  await waitFor(() => hub.coordinator.registry.get('second')?.state === 'online', 30_000, 'second online')
})
after(async () => {
  for (const client of clients) await client.endAsync().catch(() => undefined)
  for (const agent of agents) await agent.drain().catch(() => undefined)
  await hub?.stop()
  await limited?.stop()
  dir.remove()
})

async function submit(on: Hub, content: unknown, type = 'approve_deploy'): Promise<string> {
  const { status, body } = await http<{ id: string }>(on.httpUrl, 'POST', '/task', { type, content })
  assert.equal(status, 202)
  return body.id
}

async function record(on: Hub, id: string): Promise<TaskRecord> {
  return (await http<TaskRecord>(on.httpUrl, 'GET', `/tasks/${id}`)).body
}

async function until(on: Hub, id: string, states: string[], what: string): Promise<TaskRecord> {
  let task: TaskRecord | undefined
  await waitFor(async () => states.includes((task = await record(on, id)).state), 30_000, `${id} ${what}`)
  return task as TaskRecord
}

/** Every payload on a filter, from a real MQTT client, collected from now on. */
async function watch<T>(on: Hub, filter: string): Promise<{ topic: string; payload: T }[]> {
  const client = await mqtt.connectAsync(on.mqttUrl)
  clients.push(client)
  const got: { topic: string; payload: T }[] = []
  client.on('message', (topic, payload) => got.push({ topic, payload: JSON.parse(payload.toString('utf8')) as T }))
  await client.subscribeAsync(filter, { qos: 0 })
  return got
}

test('an agent asks; GET /tasks?state=needs_input lists it, the bus carries it; the HTTP answer reaches the same agent, which completes on attempt 1', async () => {
  const events = await watch<TaskEvent>(hub, topics.anyTaskEvent)
  const id = await submit(hub, { question: 'Deploy build 42 to production?', choices: ['yes', 'no'] })
  const waiting = await until(hub, id, ['needs_input'], 'needs_input')
  const leg = waiting.assignments[0]
  assert.deepEqual([leg?.state, leg?.instance, leg?.attempts, leg?.leaseExpiresAt], ['needs_input', 'asker', 1, null])
  assert.notEqual(leg?.leaseToken, null, 'the lease token is kept for the answer')
  assert.equal(leg?.input?.question, 'Deploy build 42 to production?')
  assert.deepEqual(leg?.input?.choices, ['yes', 'no'])
  assert.match((await http<{ waiting?: string }>(hub.httpUrl, 'GET', `/tasks/${id}`)).body.waiting ?? '', /asker waits for an answer/)

  const listed = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?state=needs_input')
  assert.equal(listed.status, 200)
  const summary = listed.body.tasks.find((t) => t.id === id)
  assert.equal(summary?.state, 'needs_input')
  assert.equal(summary?.assignments[0]?.input?.question, 'Deploy build 42 to production?')
  assert.ok(listed.body.tasks.every((t) => t.state === 'needs_input'))
  assert.ok(listed.body.counts.needs_input >= 1, 'the counts have the new state')
  await waitFor(() => events.some((e) => e.payload.id === id && e.payload.state === 'needs_input' && e.payload.assignments[0]?.input?.choices?.[1] === 'no'), 30_000, 'the needs_input event')

  const answered = await http<TaskAnswered>(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: 'yes' })
  assert.equal(answered.status, 202, JSON.stringify(answered.body))
  assert.deepEqual(answered.body, { id, state: 'running', instance: 'asker' })
  const done = await until(hub, id, ['completed', 'failed', 'dead'], 'finished')
  assert.equal(done.state, 'completed')
  assert.deepEqual(done.result, { attempt: 1, answer: 'yes' })
  assert.equal(done.assignments[0]?.attempts, 1)
  assert.equal(done.assignments[0]?.input?.answer, 'yes', 'the answer is kept on the leg')
  assert.deepEqual(seen.get(id)?.map((t) => t.attempt), [1], 'one attempt, on the agent that asked')
  await waitFor(() => events.some((e) => e.payload.id === id && e.payload.state === 'completed'), 30_000, 'the completed event')
  const order = events.filter((e) => e.payload.id === id).map((e) => e.payload.state)
  assert.ok(order.indexOf('needs_input') < order.lastIndexOf('running') && order.lastIndexOf('running') < order.indexOf('completed'), order.join(' → '))
})

test('the answer published on task/{id}/respond by mosquitto_pub reaches the agent; any JSON goes through', async () => {
  const id = await submit(hub, { question: 'Which approvals?' })
  await until(hub, id, ['needs_input'], 'needs_input')
  const port = new URL(hub.mqttUrl).port
  // Async: the hub runs in this process and must keep serving while mosquitto_pub waits for its PUBACK.
  await promisify(execFile)('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-q', '1', '-t', topics.taskRespond(id),
    '-m', JSON.stringify({ answer: { approve: true, by: 'ops' } })], { timeout: 30_000 })
  const done = await until(hub, id, ['completed', 'failed', 'dead'], 'finished')
  assert.equal(done.state, 'completed')
  assert.deepEqual(done.result, { attempt: 1, answer: { approve: true, by: 'ops' } })
  assert.equal(done.assignments[0]?.attempts, 1)
})

test('the lease does not expire while a person is asked: still needs_input on attempt 1 after several leases, then the answer completes it', async () => {
  const id = await submit(hub, { question: 'Take your time?' })
  await until(hub, id, ['needs_input'], 'needs_input')
  // Four leases' worth: a lease that ran meanwhile would have sent the task to attempt 2.
  await new Promise((r) => setTimeout(r, 6000))
  const still = await record(hub, id)
  assert.equal(still.state, 'needs_input')
  assert.equal(still.assignments[0]?.attempts, 1)
  assert.equal((await http(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: 'done waiting' })).status, 202)
  const done = await until(hub, id, ['completed', 'failed', 'dead'], 'finished')
  assert.deepEqual([done.state, done.assignments[0]?.attempts], ['completed', 1])
})

test('the wait limit (tasks.inputTimeout) loses the leg: the question is withdrawn at the agent and attempt 2 runs', async () => {
  const id = await submit(limited, { question: 'Nobody will answer this', askOnce: true })
  const done = await until(limited, id, ['completed', 'failed', 'dead'], 'finished')
  assert.equal(done.state, 'completed', JSON.stringify(done))
  assert.deepEqual(done.result, { attempt: 2, answer: null })
  assert.equal(done.assignments[0]?.attempts, 2)
  const tries = seen.get(id) ?? []
  assert.deepEqual(tries.map((t) => t.attempt), [1, 2])
  assert.equal(tries[0]?.aborted, true, 'attempt 1 was aborted at the agent')
  assert.ok(tries[0]?.rejected instanceof Error, 'its ask rejected')
})

test('cancel while waiting for input: the ask rejects and the handler\'s signal aborts', async () => {
  const id = await submit(hub, { question: 'Cancel me?' })
  await until(hub, id, ['needs_input'], 'needs_input')
  const cancelled = await http<TaskRecord>(hub.httpUrl, 'POST', `/tasks/${id}/cancel`)
  assert.equal(cancelled.status, 200)
  assert.equal(cancelled.body.state, 'cancelled')
  await waitFor(() => seen.get(id)?.[0]?.rejected !== undefined, 30_000, 'the ask to reject')
  const [first] = seen.get(id) ?? []
  assert.equal(first?.aborted, true)
  assert.equal((first?.rejected as { code?: string } | undefined)?.code, 'TRINITY_ERR_TASK_CONFLICT')
  assert.match(first?.rejected?.message ?? '', /cancelled by the hub/)
  assert.equal((await record(hub, id)).state, 'cancelled')
})

test('POST /tasks/:id/respond: 400 names the missing answer, 404 for an unknown task, 409 names the state when nothing waits', async () => {
  const id = await submit(hub, { question: 'Answer me properly' })
  await until(hub, id, ['needs_input'], 'needs_input')
  const missing = await http<ErrorBody>(hub.httpUrl, 'POST', `/tasks/${id}/respond`, {})
  assert.equal(missing.status, 400)
  assert.equal(missing.body.error.field, 'answer')
  assert.equal(missing.body.error.code, 'TRINITY_ERR_BAD_REQUEST')
  const unknown = await http<ErrorBody>(hub.httpUrl, 'POST', '/tasks/no-such-task/respond', { answer: 'x' })
  assert.equal(unknown.status, 404)
  assert.equal(unknown.body.error.code, 'TRINITY_ERR_TASK_NOT_FOUND')
  assert.equal((await record(hub, id)).state, 'needs_input', 'a refused answer changes nothing')

  assert.equal((await http(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: 'ok' })).status, 202)
  const done = await until(hub, id, ['completed'], 'completed')
  const late = await http<ErrorBody>(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: 'again' })
  assert.equal(late.status, 409)
  assert.equal(late.body.error.code, 'TRINITY_ERR_TASK_CONFLICT')
  assert.match(late.body.error.message, /is completed, not waiting for input/)
  assert.deepEqual(done.result, { attempt: 1, answer: 'ok' })

  const busy = await submit(hub, null, 'slow_job')
  await until(hub, busy, ['running'], 'running')
  const notAsked = await http<ErrorBody>(hub.httpUrl, 'POST', `/tasks/${busy}/respond`, { answer: 'x' })
  assert.equal(notAsked.status, 409)
  assert.match(notAsked.body.error.message, /is running, not waiting for input/)
  await http(hub.httpUrl, 'POST', `/tasks/${busy}/cancel`)
})

test('a malformed needs_input report or answer is refused on hub/errors with the field; a stale one is ignored', async () => {
  const errors = await watch<HubError>(hub, topics.hubErrors)
  const id = await submit(hub, { question: 'Still there?' })
  const waiting = await until(hub, id, ['needs_input'], 'needs_input')
  const client = await mqtt.connectAsync(hub.mqttUrl)
  clients.push(client)
  const report = topics.instanceReport('asker')
  await client.publishAsync(report, JSON.stringify({ taskId: id, state: 'needs_input', leaseToken: 'x' }), { qos: 1 })
  await client.publishAsync(report, JSON.stringify({ taskId: id, state: 'needs_input', question: 'q', choices: Array.from({ length: 21 }, (_, i) => `c${i}`) }), { qos: 1 })
  await client.publishAsync(report, JSON.stringify({ taskId: id, state: 'progress', question: 'q' }), { qos: 1 })
  await client.publishAsync(report, JSON.stringify({ taskId: id, state: 'completed', output: 'skip the person', leaseToken: waiting.assignments[0]?.leaseToken }), { qos: 1 })
  await client.publishAsync(topics.taskRespond(id), JSON.stringify({ reply: 'wrong field' }), { qos: 1 })
  await client.publishAsync(topics.taskRespond('no-such-task'), JSON.stringify({ answer: 1 }), { qos: 1 })
  await waitFor(() => errors.length >= 6, 30_000, 'six refusals')
  const reasons = errors.map((e) => `${e.payload.code} ${e.payload.reason}`)
  assert.ok(reasons.some((r) => /BAD_PAYLOAD question: required with state needs_input/.test(r)), reasons.join('\n'))
  assert.ok(reasons.some((r) => /choices/.test(r)), reasons.join('\n'))
  assert.ok(reasons.some((r) => /question: only with state needs_input, not progress/.test(r)), reasons.join('\n'))
  assert.ok(reasons.some((r) => /TASK_CONFLICT state: task .* is needs_input; a completed report waits for the answer/.test(r)), reasons.join('\n'))
  assert.equal(errors.find((e) => e.payload.topic === topics.taskRespond(id))?.payload.code, 'TRINITY_ERR_BAD_PAYLOAD')
  assert.equal(errors.find((e) => e.payload.topic === topics.taskRespond('no-such-task'))?.payload.code, 'TRINITY_ERR_TASK_NOT_FOUND')
  // A needs_input report with another lease token is stale, as any report: the leg is untouched.
  await client.publishAsync(report, JSON.stringify({ taskId: id, state: 'needs_input', question: 'forged', leaseToken: 'not-the-token' }), { qos: 1 })
  // In order behind it on the same topic: once this one is refused, the stale one has been handled.
  await client.publishAsync(report, JSON.stringify({ taskId: id, state: 'started', question: 'marker' }), { qos: 1 })
  await waitFor(() => errors.some((e) => /not started/.test(e.payload.reason)), 30_000, 'the marker refusal')
  const after = await record(hub, id)
  assert.deepEqual([after.state, after.assignments[0]?.input?.question, after.assignments[0]?.attempts], ['needs_input', 'Still there?', 1])
  assert.equal((await http(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: 'yes' })).status, 202)
  assert.equal((await until(hub, id, ['completed'], 'completed')).assignments[0]?.attempts, 1)
})

test('a fan-out whose legs both ask: needs_input until each is answered; `instance` picks the leg, else the one that asked first', async () => {
  const id = await submit(hub, { question: 'Approve your half?' }, 'fan_approve')
  await waitFor(async () => (await record(hub, id)).assignments.every((l) => l.state === 'needs_input'), 30_000, 'both legs asking')
  const legs = (await record(hub, id)).assignments
  const [firstAsker, laterAsker] = [...legs].sort((a, b) => (a.input?.askedAt ?? 0) - (b.input?.askedAt ?? 0)).map((l) => l.instance)
  const stranger = await http<ErrorBody>(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: 'x', instance: 'nobody' })
  assert.equal(stranger.status, 409)
  assert.equal(stranger.body.error.field, 'instance')

  const named = await http<TaskAnswered>(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: `for ${laterAsker ?? ''}`, instance: laterAsker })
  assert.deepEqual([named.status, named.body.instance], [202, laterAsker])
  await waitFor(async () => (await record(hub, id)).assignments.some((l) => l.instance === laterAsker && l.state === 'completed'), 30_000, 'the named leg done')
  assert.equal((await record(hub, id)).state, 'needs_input', 'the other leg still waits, so the task does')

  const unnamed = await http<TaskAnswered>(hub.httpUrl, 'POST', `/tasks/${id}/respond`, { answer: 'for the first' })
  assert.deepEqual([unnamed.status, unnamed.body.instance], [202, firstAsker])
  const done = await until(hub, id, ['completed', 'failed', 'dead'], 'finished')
  assert.equal(done.state, 'completed')
  const byInstance = Object.fromEntries((done.result as { instance: string; output: { answer: string } }[]).map((r) => [r.instance, r.output.answer]))
  assert.deepEqual(byInstance, { [firstAsker ?? '']: 'for the first', [laterAsker ?? '']: `for ${laterAsker ?? ''}` })
})

test('drain does not wait for a person: the asking task goes back to the hub, and its ask rejects', async () => {
  const drainer = await connectAgent({ id: 'drainer', url: hub.mqttUrl, handleSignals: false, heartbeatMs: 500, handlers: { drain_job: asking } })
  await waitFor(() => hub.coordinator.registry.get('drainer')?.state === 'online', 30_000, 'drainer online')
  const id = await submit(hub, { question: 'Will anyone answer before I go?' }, 'drain_job')
  await until(hub, id, ['needs_input'], 'needs_input')
  await drainer.drain()
  const [first] = seen.get(id) ?? []
  assert.equal(first?.aborted, true)
  assert.match(first?.rejected?.message ?? '', /draining/)
  // Offline: the leg is lost and waits in the queue for another drainer (attempt 2 when one comes).
  const back = await until(hub, id, ['queued'], 'back in the queue')
  assert.equal(back.assignments[0]?.attempts, 1)
  assert.match(back.assignments[0]?.error ?? '', /drainer: went offline/)
  await http(hub.httpUrl, 'POST', `/tasks/${id}/cancel`)
})

/** `trinity …` against the hub by --url, to the end. */
function cli(args: string[]): Promise<CliRun> {
  return runCli([...args, '--url', hub.httpUrl], { cwd: dir.path })
}

test('trinity answer: text from the words, JSON with --json; 404 and 409 exit 1 with their registry codes', async () => {
  const text = await submit(hub, { question: 'Release notes?' })
  await until(hub, text, ['needs_input'], 'needs_input')
  const ok = await cli(['answer', text, 'ship', 'it', 'today'])
  assert.equal(ok.code, 0, ok.stderr)
  assert.deepEqual(JSON.parse(ok.stdout), { id: text, state: 'running', instance: 'asker' })
  assert.deepEqual((await until(hub, text, ['completed'], 'completed')).result, { attempt: 1, answer: 'ship it today' })

  const json = await submit(hub, { question: 'Which replicas?' })
  await until(hub, json, ['needs_input'], 'needs_input')
  const structured = await cli(['answer', json, '--json', '{"replicas":[1,2]}'])
  assert.equal(structured.code, 0, structured.stderr)
  assert.deepEqual((await until(hub, json, ['completed'], 'completed')).result, { attempt: 1, answer: { replicas: [1, 2] } })

  const unknown = await cli(['answer', 'no-such-task', 'yes'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /404 task not found: no-such-task \(TRINITY_ERR_TASK_NOT_FOUND\)/)
  const finished = await cli(['answer', json, 'too late'])
  assert.equal(finished.code, 1)
  assert.match(finished.stderr, /409 .*is completed, not waiting for input \(TRINITY_ERR_TASK_CONFLICT\)/)
  const badJson = await cli(['answer', json, '--json', '{oops'])
  assert.equal(badJson.code, 1)
  assert.match(badJson.stderr, /--json needs a JSON value/)
})

test('a task waiting for input is unfinished work: the store resumes it after a restart, its question with it', async () => {
  const { SqliteStore } = await import('../src/coordinator/sqlite-store.js')
  const store = new SqliteStore({ file: `${dir.path}/restore/trinity.db`, sync: 'normal' })
  try {
    const leg = { targets: ['asker'], state: 'needs_input' as const, instance: 'asker', attempts: 1, leaseToken: 't', leaseExpiresAt: null, notBefore: 0, tried: [], input: { question: 'still there?', askedAt: 1 } }
    store.saveTask({ id: 'waits', type: 'approve_deploy', content: null, priority: 'normal', state: 'needs_input', strategy: 'least-loaded', createdAt: 1, updatedAt: 2, maxAttempts: 3, assignments: [leg] })
    const resumed = store.unfinishedTasks()
    assert.deepEqual(resumed.map((t) => [t.id, t.state, t.assignments[0]?.input?.question]), [['waits', 'needs_input', 'still there?']])
  } finally {
    store.close()
  }
})
