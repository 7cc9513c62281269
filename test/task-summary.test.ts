/**
 * Payload sizes of tasks (issue #10, point 9): a big content is stored once,
 * lists carry summaries, and the event stream carries the content only on
 * admission and the result only at the end.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { PREVIEW_CHARS } from '../src/contract/preview.js'
import type { TaskEvent, TaskRecord, TaskSummary } from '../src/contract/payloads/task.js'
import { jsonBytes, preview, summarizeTask } from '../src/contract/task-summary.js'
import { topicsFor } from '../src/contract/topics.js'
import { writePlan } from '../src/fleet/work.js'
import { TestInstance } from './helpers/instance.js'
import { http, startTestHub, testConfig, testScope, waitFor } from './helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')

test('previews: a string as is, anything else as JSON, cut to 160 characters ending in …', () => {
  assert.equal(preview('short'), 'short')
  assert.equal(preview({ a: [1, 2] }), '{"a":[1,2]}')
  assert.equal(preview(42), '42')
  const long = preview('x'.repeat(1000))
  assert.equal(long.length, PREVIEW_CHARS)
  assert.equal(long, `${'x'.repeat(PREVIEW_CHARS - 1)}…`)
  assert.equal(preview('y'.repeat(PREVIEW_CHARS)), 'y'.repeat(PREVIEW_CHARS), 'exactly the limit is not cut')
  // A cut never leaves half a surrogate pair behind.
  const emoji = preview(`${'a'.repeat(PREVIEW_CHARS - 2)}😀😀`)
  assert.ok(!/[\ud800-\udbff]…$/.test(emoji), JSON.stringify(emoji))
  assert.equal(jsonBytes('é'), 4, 'two quotes and a two-byte character')
  assert.equal(jsonBytes({ k: '😀' }), Buffer.byteLength(JSON.stringify({ k: '😀' })))
})

test('a summary drops content, result, leg outputs and progress, and says what they were', () => {
  const record: TaskRecord = {
    id: 't1', type: 'general', content: 'z'.repeat(5000), priority: 'normal', state: 'completed', strategy: 'all',
    createdAt: 1, updatedAt: 2, maxAttempts: 3, result: { big: 'r'.repeat(5000) },
    assignments: [{ targets: ['c1'], state: 'completed', instance: 'c1', attempts: 1, leaseToken: null, leaseExpiresAt: null, notBefore: 1, tried: [], output: 'o'.repeat(5000), progress: { step: 'p'.repeat(500) } }],
  }
  const summary = summarizeTask(record)
  assert.ok(!('content' in summary) && !('result' in summary))
  assert.ok(!('output' in (summary.assignments[0] ?? {})) && !('progress' in (summary.assignments[0] ?? {})))
  assert.equal(summary.contentBytes, 5002)
  assert.equal(summary.contentPreview, `${'z'.repeat(159)}…`)
  assert.equal(summary.resultPreview, preview(record.result))
  assert.equal(summary.assignments[0]?.progressPreview, preview(record.assignments[0]?.progress))
  assert.equal(summary.assignments[0]?.instance, 'c1')
  assert.ok(JSON.stringify(summary).length < 1000)
})

test('a 2 MB general task: stored once, listed small, its content on the admission event only and its result on the last', async () => {
  // Generous lease and health bounds: on a loaded machine moving 2 MB around must not look like a lost instance.
  const hub = await startTestHub(await testConfig(dir.path, {
    limits: { maxPayload: '8mb' }, tasks: { lease: '120s' }, health: { interval: '5s', timeout: '5s', missesBeforeOffline: 5 },
  }))
  cleanups.push(() => hub.stop())
  // C1's real plan, in a bare protocol instance.
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', handler: (task) => writePlan('general', task.content) })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 10_000, 'c1 online')

  const events: { raw: number; event: TaskEvent }[] = []
  const watcher = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => watcher.endAsync())
  watcher.on('message', (_topic, payload) => events.push({ raw: payload.length, event: JSON.parse(payload.toString()) as TaskEvent }))
  await watcher.subscribeAsync(topics.anyTaskEvent, { qos: 1 })

  const content = `${'a long request. '.repeat(131_072)}`
  const bytes = Buffer.byteLength(JSON.stringify(content))
  assert.ok(bytes > 2_000_000)
  const ids: string[] = []
  for (let i = 0; i < 2; i++) {
    const submitted = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'general', content })
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body).slice(0, 300))
    ids.push(submitted.body.id)
  }
  for (const id of ids) {
    await waitFor(() => events.some((e) => e.event.id === id && e.event.state === 'completed'), 30_000, `the completed event of ${id}`)
  }

  for (const id of ids) {
    const response = await fetch(`${hub.httpUrl}/tasks/${id}`)
    const text = await response.text()
    assert.ok(text.length < bytes * 1.1, `the stored record is ${text.length} bytes for a ${bytes}-byte content`)
    const record = JSON.parse(text) as TaskRecord
    assert.equal(record.content, content, 'GET /tasks/:id is still the full record')
    const plan = (record.result as { plan: string[] }).plan
    assert.equal(plan.length, 4)
    assert.equal(plan.filter((step) => step.includes('a long request.')).length, 1, 'the plan names the content once')

    const mine = events.filter((e) => e.event.id === id)
    // Usually queued, assigned, running, completed; a retry under load may add more in between.
    assert.equal(mine[0]?.event.state, 'queued')
    assert.equal(mine.at(-1)?.event.state, 'completed')
    assert.equal(mine.filter((e) => e.event.state === 'completed').length, 1)
    const [admission, ...later] = mine
    assert.equal(admission?.event.content, content, 'the admission event carries the content')
    assert.equal(admission?.event.contentBytes, bytes)
    for (const { event, raw } of later) {
      assert.ok(!('content' in event), `no content on the ${event.state} event`)
      assert.ok(raw < 4096, `the ${event.state} event is ${raw} bytes`)
      assert.equal(event.contentBytes, bytes)
      assert.equal(event.contentPreview, preview(content))
    }
    const terminal = mine.at(-1)?.event
    assert.deepEqual(terminal?.result, record.result, 'the terminal event carries the result')
    assert.equal(terminal?.resultPreview, preview(record.result))
    for (const { event } of mine.slice(0, -1)) assert.ok(!('result' in event), `no result on the ${event.state} event`)
  }

  const listResponse = await fetch(`${hub.httpUrl}/tasks?limit=2`)
  const listText = await listResponse.text()
  assert.ok(listText.length < 8192, `GET /tasks?limit=2 is ${listText.length} bytes`)
  const list = JSON.parse(listText) as { tasks: TaskSummary[] }
  assert.deepEqual(list.tasks.map((t) => t.id).sort(), [...ids].sort())
  for (const summary of list.tasks) {
    assert.ok(!('content' in summary) && !('result' in summary))
    assert.equal(summary.contentBytes, bytes)
    assert.equal(summary.contentPreview.length, PREVIEW_CHARS)
    assert.match(summary.resultPreview ?? '', /^\{"plan":\["1\. Understand the request: a long request/)
    assert.ok(!('output' in (summary.assignments[0] ?? {})))
  }

  const full = await http<{ tasks: TaskRecord[] }>(hub.httpUrl, 'GET', '/tasks?limit=2&full=true')
  assert.equal(full.status, 200)
  assert.equal(full.body.tasks.length, 2)
  for (const record of full.body.tasks) {
    assert.equal(record.content, content)
    assert.deepEqual(record.result, (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${record.id}`)).body.result)
  }
  assert.equal((await http(hub.httpUrl, 'GET', '/tasks?full=maybe')).status, 400)
})

test('progress rides on its event as a bounded preview; a failed task ends with its error and no result', async () => {
  const hub = await startTestHub(await testConfig(dir.path, { tasks: { maxAttempts: 1 } }))
  cleanups.push(() => hub.stop())
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', manual: true })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 10_000, 'c1 online')
  const events: TaskEvent[] = []
  const watcher = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => watcher.endAsync())
  watcher.on('message', (_topic, payload) => events.push(JSON.parse(payload.toString()) as TaskEvent))
  await watcher.subscribeAsync(topics.anyTaskEvent, { qos: 1 })

  const { body } = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'bug_fix', content: 'login loops' })
  await c1.waitForTasks(1)
  const task = c1.received[0]
  assert.ok(task !== undefined)
  await c1.report({ taskId: task.id, leaseToken: task.leaseToken, state: 'progress', output: { log: 'step '.repeat(1000) } })
  await waitFor(() => events.some((e) => e.id === body.id && e.state === 'running'), 10_000, 'the running event')
  const running = events.find((e) => e.id === body.id && e.state === 'running')
  assert.equal(running?.assignments[0]?.progressPreview, preview({ log: 'step '.repeat(1000) }))
  assert.ok(!('progress' in (running?.assignments[0] ?? {})))

  await c1.report({ taskId: task.id, leaseToken: task.leaseToken, state: 'failed', error: 'cannot reproduce' })
  await waitFor(() => events.some((e) => e.id === body.id && e.state === 'failed'), 10_000, 'the failed event')
  const failed = events.find((e) => e.id === body.id && e.state === 'failed')
  assert.match(failed?.error ?? '', /c1: cannot reproduce/)
  assert.ok(!('result' in (failed ?? {})) && !('content' in (failed ?? {})))
})
