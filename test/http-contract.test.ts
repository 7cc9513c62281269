/**
 * The HTTP answers against the contract's schemas (src/contract/http.ts).
 * Fastify serializes each answer with its response schema and silently drops
 * what the schema does not name, so besides checking every answer against
 * its schema, this compares each one with the hub's own value: a field the
 * hub computes but the schema forgets shows up here as a missing key.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TSchema } from 'typebox'
import { ErrorBody, HubSummary, InstanceList, MessageList, TaskAdmitted, TaskDetail, TaskList } from '../src/contract/http.js'
import { TaskRecord, TaskSummary } from '../src/contract/payloads/task.js'
import { HubStats } from '../src/contract/payloads/hub.js'
import { validate } from '../src/contract/payloads/validate.js'
import { summarizeTask } from '../src/contract/task-summary.js'
import { TestInstance } from './helpers/instance.js'
import { http, startTestHub, testConfig, testScope, waitFor } from './helpers/hub.js'

const { dir, cleanups } = testScope()

function assertSchema(schema: TSchema, value: unknown, what: string): void {
  const checked = validate(schema, value)
  assert.ok(checked.ok, `${what}: ${checked.ok ? '' : checked.reason}\n${JSON.stringify(value).slice(0, 2000)}`)
}

/** Every key of `expected` (recursively; arrays index by index) is in `actual`, by its path. */
function missingKeys(expected: unknown, actual: unknown, path = ''): string[] {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [path]
    return expected.slice(0, actual.length).flatMap((item, i) => missingKeys(item, actual[i], `${path}[${i}]`))
  }
  if (typeof expected !== 'object' || expected === null) return []
  if (typeof actual !== 'object' || actual === null) return [path]
  const record = actual as Record<string, unknown>
  return Object.entries(expected).flatMap(([key, value]) =>
    key in record ? missingKeys(value, record[key], `${path}.${key}`) : [`${path}.${key}`])
}

/** What the hub would send without a schema: its value, through JSON. */
const wire = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown

test('every HTTP answer matches its contract schema and loses nothing the hub computed', async () => {
  const hub = await startTestHub(await testConfig(dir.path))
  cleanups.push(() => hub.stop())
  const c1 = await TestInstance.start({
    url: hub.mqttUrl, id: 'c1', handler: async (task, instance) => {
      await instance.report({ taskId: task.id, leaseToken: task.leaseToken, state: 'progress', output: { step: 'half way' } })
      return { done: task.content }
    },
  })
  cleanups.push(() => c1.close())
  await waitFor(() => (hub.coordinator.registry.get('c1')?.checks ?? 0) > 0, 30_000, 'a health check of c1')
  // A supervisor's view of the process, as its status would set it, so `process` is not null.
  const c1Instance = hub.coordinator.registry.get('c1')
  assert.ok(c1Instance !== undefined)
  c1Instance.process = { state: 'running', pid: 4242, restarts: 1, reason: null }

  // A task that completes (result, leg output, progress) and one that waits (analytics has no instance).
  const submitted = await http<TaskAdmitted>(hub.httpUrl, 'POST', '/task', { type: 'general', content: { ask: 'plan' }, priority: 'high' })
  assert.equal(submitted.status, 202)
  assertSchema(TaskAdmitted, submitted.body, 'POST /task')
  assert.deepEqual(missingKeys(wire(hub.coordinator.scheduler.get(submitted.body.id)), submitted.body.task), [])
  const done = submitted.body.id
  await waitFor(() => hub.coordinator.scheduler.get(done)?.state === 'completed', 30_000, 'the general task completed')
  const waiting = (await http<TaskAdmitted>(hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: [1, 2] })).body.id

  const summary = await http<HubSummary>(hub.httpUrl, 'GET', '/')
  assertSchema(HubSummary, summary.body, 'GET /')
  assertSchema(HubStats, hub.coordinator.stats(), 'the hub stats')
  assert.deepEqual(missingKeys(wire(hub.coordinator.stats()), summary.body), [])

  const instances = await http<InstanceList>(hub.httpUrl, 'GET', '/instances')
  assertSchema(InstanceList, instances.body, 'GET /instances')
  const c1View = instances.body.instances.find((i) => i.id === 'c1')
  assert.deepEqual(c1View?.process, { state: 'running', pid: 4242, restarts: 1, reason: null })
  assert.ok((c1View?.recentChecks.length ?? 0) > 0, 'recentChecks is served')
  assert.deepEqual(missingKeys(wire(hub.coordinator.instances()), instances.body.instances), [])

  // GET /messages, which the dashboard decodes with MessageList.
  assert.equal((await http(hub.httpUrl, 'POST', '/send', { from: 'dashboard', to: 'c1', message: 'hello c1' })).status, 202)
  let messages = await http<MessageList>(hub.httpUrl, 'GET', '/messages')
  await waitFor(async () => {
    messages = await http<MessageList>(hub.httpUrl, 'GET', '/messages')
    return messages.body.messages.some((m) => m.message === 'hello c1')
  }, 30_000, 'the message in GET /messages')
  assertSchema(MessageList, messages.body, 'GET /messages')

  const detail = await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${done}`)
  assertSchema(TaskDetail, detail.body, 'GET /tasks/:id')
  assert.deepEqual(detail.body.result, { done: { ask: 'plan' } })
  assert.deepEqual(missingKeys(wire(hub.coordinator.scheduler.get(done)), detail.body), [])
  const stuck = await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${waiting}`)
  assertSchema(TaskDetail, stuck.body, 'GET /tasks/:id (waiting)')
  assert.match(stuck.body.waiting ?? '', /^no online instance can take analyze_data/)

  const list = await http<TaskList>(hub.httpUrl, 'GET', '/tasks')
  assertSchema(TaskList, list.body, 'GET /tasks')
  for (const task of list.body.tasks) assertSchema(TaskSummary, task, `GET /tasks item ${task.id}`)
  const record = hub.coordinator.scheduler.get(done)
  assert.ok(record !== undefined)
  const listed = list.body.tasks.find((t) => t.id === done)
  assert.deepEqual(missingKeys(wire(summarizeTask(record)), listed), [])
  assert.ok(listed !== undefined && 'resultPreview' in listed, JSON.stringify(listed))
  assert.deepEqual(missingKeys(wire(hub.coordinator.taskCounts()), list.body.counts), [])

  const full = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?full=true')
  assertSchema(TaskList, full.body, 'GET /tasks?full=true')
  for (const task of full.body.tasks) assertSchema(TaskRecord, task, `GET /tasks?full=true item ${task.id}`)
  assert.deepEqual(missingKeys(wire(record), full.body.tasks.find((t) => t.id === done)), [])

  for (const [method, path, body, status] of [
    ['GET', '/tasks/nope', undefined, 404],
    ['GET', '/tasks?state=sleeping', undefined, 400],
    ['POST', '/task', { type: 'general', content: 'x', extra: 1 }, 400],
    ['POST', '/task', { type: 'no_route_here', content: 'x' }, 422],
  ] as const) {
    const answer = await http<ErrorBody>(hub.httpUrl, method, path, body)
    assert.equal(answer.status, status, `${method} ${path}`)
    assertSchema(ErrorBody, answer.body, `${method} ${path}`)
  }
})
