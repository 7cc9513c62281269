/**
 * A poison task cannot wedge dispatch (issue #14, finding 1). A 12 KB task
 * whose content nests 5,000 levels deep parses fine, but overflows the stack
 * when the hub serialises it: it used to stay in memory, every later dispatch
 * and lease sweep threw, tasks stopped running while /health said ok, and the
 * next submission got a 500 and was lost. Input nesting is now bounded by
 * `limits.maxDepth` (HTTP 400, or a refusal on hub/errors, naming the field),
 * and after each poison a normal task still completes.
 *
 * The payloads are built as text: JSON.stringify of such a value throws here
 * too, which is the bug.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import type { HubError } from '../src/contract/payloads/hub.js'
import { topicsFor } from '../src/contract/topics.js'
import { tooDeepField } from '../src/contract/payloads/validate.js'
import { ConfigError, parseConfig } from '../src/config/load.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { http, startTestHub, testConfig, testScope, waitFor } from './helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')
/** Generous lease and health bounds: on a loaded machine c1 must not look lost. */
const patient = { tasks: { lease: '120s' }, health: { interval: '5s', timeout: '5s', missesBeforeOffline: 5 } }

/** A JSON array nested `depth` levels deep, as text: `[[[…"x"…]]]`. */
function nested(depth: number): string {
  return `${'['.repeat(depth)}"x"${']'.repeat(depth)}`
}

interface ErrorBody { error: { code: string; message: string; field?: string } }

async function setUp(manual: boolean): Promise<{ hub: Hub; c1: TestInstance; bus: MqttClient; errors: HubError[] }> {
  const hub = await startTestHub(await testConfig(dir.path, patient))
  cleanups.push(() => hub.stop())
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', manual })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 30_000, 'c1 online')
  const bus = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => bus.endAsync())
  const errors: HubError[] = []
  bus.on('message', (_topic, payload) => errors.push(JSON.parse(payload.toString()) as HubError))
  await bus.subscribeAsync(topics.hubErrors, { qos: 1 })
  return { hub, c1, bus, errors }
}

async function state(hub: Hub, id: string): Promise<string | undefined> {
  const { status, body } = await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)
  return status === 200 ? body.state : undefined
}

/** The hub still works: a normal task submitted now completes, and /health says ok because it is. */
async function stillWorks(hub: Hub, id: string): Promise<void> {
  const submitted = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { id, type: 'general', content: 'normal' })
  assert.equal(submitted.status, 202, `a normal task after the poison is admitted: ${JSON.stringify(submitted.body)}`)
  await waitFor(async () => (await state(hub, id)) === 'completed', 60_000, `${id} to complete`)
  const health = await http<{ status: string }>(hub.httpUrl, 'GET', '/health')
  assert.equal(health.status, 200)
  assert.equal(health.body.status, 'ok')
}

test('limits.maxDepth: 64 by default, configurable, validated like the other limits', () => {
  assert.equal(parseConfig('', 'x.yaml').limits.maxDepth, 64)
  assert.equal(parseConfig('limits:\n  maxDepth: 200\n', 'x.yaml').limits.maxDepth, 200)
  for (const bad of ['0', '5000', 'deep', '1.5']) {
    assert.throws(() => parseConfig(`limits:\n  maxDepth: ${bad}\n`, 'x.yaml'), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.match(`${err.problems[0]?.file}:${err.problems[0]?.line}:${err.problems[0]?.col}: ${err.problems[0]?.field}`, /^x\.yaml:2:13: limits\.maxDepth/, bad)
      return true
    })
  }
})

test('the depth check names the first field too deep, counts [] and {} as one level, and does not recurse', () => {
  assert.equal(tooDeepField({ a: 'x', b: [[1]] }, 2), null)
  assert.equal(tooDeepField({ a: 'x', b: [[[1]]] }, 2), 'b')
  assert.equal(tooDeepField({ a: { b: { c: {} } } }, 2), 'a')
  assert.equal(tooDeepField([[[]]], 2), '(payload)')
  assert.equal(tooDeepField([[]], 2), null)
  // Objects inside arrays and arrays inside objects count alike; a later field is found after a shallow one.
  assert.equal(tooDeepField({ a: [{ b: [] }] }, 2), 'a')
  assert.equal(tooDeepField({ a: [{ b: [] }] }, 3), null)
  assert.equal(tooDeepField({ a: [1, { b: 2 }], c: 'x', d: { e: [{ f: {} }] } }, 3), 'd')
  assert.equal(tooDeepField({ a: null, b: 0 }, 1), null)
  assert.equal(tooDeepField('just a string', 1), null)
  // A million levels (what 2 MB of brackets parse to) is answered, not a stack overflow.
  const huge = JSON.parse(nested(1_000_000)) as unknown
  assert.equal(tooDeepField({ content: huge }, 64), 'content')
})

test('a configured limit applies to HTTP bodies', async () => {
  const hub = await startTestHub(await testConfig(dir.path, { ...patient, limits: { maxDepth: 3 } }))
  cleanups.push(() => hub.stop())
  const refused = await http<ErrorBody>(hub.httpUrl, 'POST', '/task', { type: 'general', content: { a: { b: { c: {} } } } })
  assert.equal(refused.status, 400)
  assert.match(refused.body.error.message, /content: nests deeper than 3 levels \(limits\.maxDepth\)/)
  const accepted = await http(hub.httpUrl, 'POST', '/task', { type: 'general', content: { a: { b: {} } } })
  assert.equal(accepted.status, 202)
})

test('HTTP: a task whose content nests 5,000 deep is a 400 naming content; the next task still runs', async () => {
  const { hub } = await setUp(false)
  const raw = `{"id":"deep-http","type":"general","content":${nested(5000)}}`
  assert.ok(raw.length > 10_000 && raw.length < 1024 * 1024, 'small: well under limits.maxPayload')
  const refused = await http<ErrorBody>(hub.httpUrl, 'POST', '/task', undefined, raw)
  assert.equal(refused.status, 400, JSON.stringify(refused.body))
  assert.equal(refused.body.error.code, 'TRINITY_ERR_PAYLOAD_TOO_DEEP')
  assert.equal(refused.body.error.field, 'content')
  assert.match(refused.body.error.message, /content: nests deeper than 64 levels \(limits\.maxDepth\)/)
  assert.equal(await state(hub, 'deep-http'), undefined, 'nothing of it is stored')
  // 64 levels is the limit itself: accepted and run.
  const atLimit = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', undefined, `{"id":"at-limit","type":"general","content":${nested(64)}}`)
  assert.equal(atLimit.status, 202)
  await waitFor(async () => (await state(hub, 'at-limit')) === 'completed', 60_000, 'the task at the limit')
  // POST /send is bounded too: a deep unknown field is named before the schema looks at it.
  const send = await http<ErrorBody>(hub.httpUrl, 'POST', '/send', undefined, `{"from":"c1","to":"c1","message":"hi","extra":${nested(5000)}}`)
  assert.equal(send.status, 400)
  assert.equal(send.body.error.code, 'TRINITY_ERR_PAYLOAD_TOO_DEEP')
  assert.equal(send.body.error.field, 'extra')
  await stillWorks(hub, 'after-http')
})

test('MQTT: a deep submission and a deep message are refused on hub/errors naming the field; the next task still runs', async () => {
  const { hub, bus, errors } = await setUp(false)
  await bus.publishAsync(topics.taskSubmit, `{"id":"deep-mqtt","type":"general","content":${nested(5000)}}`, { qos: 1 })
  await waitFor(() => errors.some((e) => e.topic === topics.taskSubmit), 60_000, 'the refusal on hub/errors')
  const refusal = errors.find((e) => e.topic === topics.taskSubmit)
  assert.equal(refusal?.code, 'TRINITY_ERR_PAYLOAD_TOO_DEEP')
  assert.match(refusal?.reason ?? '', /^content: nests deeper than 64 levels \(limits\.maxDepth\)$/)
  assert.equal(await state(hub, 'deep-mqtt'), undefined)

  const messageTopic = topics.message('c1', 'c1')
  await bus.publishAsync(messageTopic, `{"id":"m-deep","from":"c1","to":"c1","message":"hi","ts":1,"extra":${nested(5000)}}`, { qos: 1 })
  await waitFor(() => errors.some((e) => e.topic === messageTopic), 60_000, 'the message refusal')
  assert.equal(errors.find((e) => e.topic === messageTopic)?.code, 'TRINITY_ERR_PAYLOAD_TOO_DEEP')

  // A normal submission over MQTT, then one over HTTP, both complete.
  await bus.publishAsync(topics.taskSubmit, JSON.stringify({ id: 'after-mqtt', type: 'general', content: 'normal' }), { qos: 1 })
  await waitFor(async () => (await state(hub, 'after-mqtt')) === 'completed', 60_000, 'after-mqtt to complete')
  await stillWorks(hub, 'after-mqtt-http')
})

test('reports: a deep progress or completed output is refused naming output; the task is finished by a sane report, and the next runs', async () => {
  const { hub, c1, errors } = await setUp(true)
  const submitted = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { id: 'reported', type: 'general', content: 'work' })
  assert.equal(submitted.status, 202)
  await c1.waitForTasks(1, 60_000)
  const task = c1.received[0]
  assert.ok(task !== undefined)
  const reportTopic = topics.instanceReport('c1')
  for (const reportState of ['progress', 'completed']) {
    const before = errors.length
    await c1.client.publishAsync(reportTopic, `{"taskId":"reported","leaseToken":"${task.leaseToken}","state":"${reportState}","output":${nested(5000)}}`, { qos: 1 })
    await waitFor(() => errors.slice(before).some((e) => e.topic === reportTopic), 60_000, `the ${reportState} refusal`)
    const refusal = errors.slice(before).find((e) => e.topic === reportTopic)
    assert.equal(refusal?.code, 'TRINITY_ERR_PAYLOAD_TOO_DEEP')
    assert.match(refusal?.reason ?? '', /^output: nests deeper than 64 levels/)
  }
  assert.equal(await state(hub, 'reported'), 'assigned', 'neither deep report was applied')
  await c1.report({ taskId: task.id, leaseToken: task.leaseToken, state: 'completed', output: 'ok' })
  await waitFor(async () => (await state(hub, 'reported')) === 'completed', 60_000, 'completed by the sane report')

  // The next task: c1 (manual) is handed it, and its report completes it.
  const next = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { id: 'after-report', type: 'general', content: 'normal' })
  assert.equal(next.status, 202)
  await c1.waitForTasks(2, 60_000)
  const second = c1.received[1]
  assert.ok(second !== undefined)
  await c1.report({ taskId: second.id, leaseToken: second.leaseToken, state: 'completed', output: 'ok' })
  await waitFor(async () => (await state(hub, 'after-report')) === 'completed', 60_000, 'after-report to complete')
  assert.equal((await http<{ status: string }>(hub.httpUrl, 'GET', '/health')).body.status, 'ok')
})
