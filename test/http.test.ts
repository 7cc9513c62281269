/** The HTTP API: schemas on every route, 400 naming the field, the hub still up after bad input. */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { http, startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'

const dir = tempDir()
let hub: Hub
let c1: TestInstance
before(async () => {
  hub = await startTestHub(await testConfig(dir.path))
  c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', manual: true })
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online')
})
after(async () => {
  await c1.close()
  await hub.stop()
  dir.remove()
})

type ErrorBody = { error: { code: string; message: string; field?: string } }

test('malformed JSON and wrong fields get 400 naming the field', async () => {
  const cases: [string | undefined, unknown, string][] = [
    ['{"type": "general", ', undefined, 'body'],
    [undefined, { content: 'x' }, 'type'],
    [undefined, { type: 'general' }, 'content'],
    [undefined, { type: 'general', content: 'x', priority: 'urgent' }, 'priority'],
    [undefined, { type: 'General Task', content: 'x' }, 'type'],
    [undefined, { type: 'general', content: 'x', colour: 'red' }, 'colour'],
    [undefined, { type: 'general', content: 'x', id: 'has/slash' }, 'id'],
  ]
  for (const [raw, body, field] of cases) {
    const response = await http<ErrorBody>(hub.httpUrl, 'POST', '/task', body, raw)
    assert.equal(response.status, 400, JSON.stringify({ body, response }))
    assert.equal(response.body.error.code, 'TRINITY_ERR_BAD_REQUEST')
    assert.equal(response.body.error.field, field, JSON.stringify(response.body))
  }
  const send = await http<ErrorBody>(hub.httpUrl, 'POST', '/send', { from: 'c1', message: 'hi' })
  assert.equal(send.status, 400)
  assert.equal(send.body.error.field, 'to')
  const limit = await http<ErrorBody>(hub.httpUrl, 'GET', '/messages?limit=zero')
  assert.equal(limit.status, 400)
  assert.equal(limit.body.error.field, 'limit')
  const state = await http<ErrorBody>(hub.httpUrl, 'GET', '/tasks?state=sleeping')
  assert.equal(state.status, 400)
  assert.equal(state.body.error.field, 'state')
  assert.equal((await http(hub.httpUrl, 'GET', '/health')).status, 200, 'still up')
})

test('task lifecycle over HTTP: 202 with assignment, get, cancel, dead letter and retry', async () => {
  const accepted = await http<{ id: string; state: string; assigned: string[] }>(hub.httpUrl, 'POST', '/task', { type: 'general', content: 'one' })
  assert.equal(accepted.status, 202)
  assert.deepEqual(accepted.body.assigned, ['c1'])
  assert.equal(accepted.body.state, 'assigned')
  const cancelled = await http<{ state: string }>(hub.httpUrl, 'POST', `/tasks/${accepted.body.id}/cancel`)
  assert.equal(cancelled.status, 200)
  assert.equal(cancelled.body.state, 'cancelled')
  assert.equal((await http<ErrorBody>(hub.httpUrl, 'POST', `/tasks/${accepted.body.id}/cancel`)).body.error.code, 'TRINITY_ERR_TASK_CONFLICT')
  assert.equal((await http<ErrorBody>(hub.httpUrl, 'GET', '/tasks/nope')).status, 404)

  // c1 fails it on every attempt: failed after maxAttempts, listed, then replayed.
  const doomed = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'general', content: 'doomed' })
  for (let attempt = 1; attempt <= 3; attempt++) {
    await waitFor(() => c1.received.filter((t) => t.id === doomed.body.id).length === attempt, 5000, `attempt ${attempt}`)
    const frame = c1.received.filter((t) => t.id === doomed.body.id)[attempt - 1]!
    assert.equal(frame.attempt, attempt)
    await c1.report({ taskId: frame.id, leaseToken: frame.leaseToken, state: 'failed', error: `boom ${attempt}` })
  }
  await waitFor(async () => (await http<{ state: string }>(hub.httpUrl, 'GET', `/tasks/${doomed.body.id}`)).body.state === 'failed', 5000, 'failed')
  const failed = await http<{ tasks: { id: string; error: string }[] }>(hub.httpUrl, 'GET', '/tasks?state=failed')
  assert.match(failed.body.tasks.find((t) => t.id === doomed.body.id)?.error ?? '', /boom 3/)
  const retried = await http<{ state: string }>(hub.httpUrl, 'POST', `/tasks/${doomed.body.id}/retry`)
  assert.equal(retried.status, 202)
  await waitFor(() => c1.received.filter((t) => t.id === doomed.body.id).length === 4, 5000, 'replayed')
  const again = c1.received.filter((t) => t.id === doomed.body.id)[3]!
  await c1.report({ taskId: again.id, leaseToken: again.leaseToken, state: 'completed', output: 'finally' })
  await waitFor(async () => (await http<{ state: string }>(hub.httpUrl, 'GET', `/tasks/${doomed.body.id}`)).body.state === 'completed', 5000, 'completed')
})

test('GET /, /instances, /metrics and /messages answer with what the hub knows', async () => {
  const root = await http<{ name: string; broker: { connected: boolean }; instances: { total: number } }>(hub.httpUrl, 'GET', '/')
  assert.equal(root.body.name, 'trinity')
  assert.equal(root.body.broker.connected, true)
  const instances = await http<{ instances: { id: string; state: string }[] }>(hub.httpUrl, 'GET', '/instances')
  assert.deepEqual(instances.body.instances.map((i) => [i.id, i.state]), [['c1', 'online']])
  const metrics = await fetch(`${hub.httpUrl}/metrics`).then((r) => r.text())
  assert.match(metrics, /trinity_instances\{state="online"\} 1/)
  assert.match(metrics, /trinity_tasks\{state="completed"\} \d+/)
  assert.equal((await http<ErrorBody>(hub.httpUrl, 'GET', '/nowhere')).body.error.code, 'TRINITY_ERR_NOT_FOUND')
})
