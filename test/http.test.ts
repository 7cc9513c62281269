/** The HTTP API: schemas on every route, 400 naming the field, the hub still up after bad input. */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { ErrorBody, InstanceList } from '../src/contract/http.js'
import type { Message } from '../src/contract/payloads/message.js'
import { HubError } from '../src/contract/payloads/hub.js'
import { validate } from '../src/contract/payloads/validate.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { spawn } from 'node:child_process'
import { CLI, http, startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'

const dir = tempDir()
let hub: Hub
let c1: TestInstance
before(async () => {
  // One sync peer ("2"): POST /send to it is a known recipient even with the bridge off.
  hub = await startTestHub(await testConfig(dir.path, { sync: { peers: ['2'] } }))
  c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', manual: true })
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online')
})
after(async () => {
  await c1.close()
  await hub.stop()
  dir.remove()
})


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
  const instances = await http<InstanceList>(hub.httpUrl, 'GET', '/instances')
  assert.deepEqual(instances.body.instances.map((i) => [i.id, i.state]), [['c1', 'online']])
  const metrics = await fetch(`${hub.httpUrl}/metrics`).then((r) => r.text())
  assert.match(metrics, /trinity_instances\{state="online"\} 1/)
  assert.match(metrics, /trinity_tasks\{state="completed"\} \d+/)
  assert.equal((await http<ErrorBody>(hub.httpUrl, 'GET', '/nowhere')).body.error.code, 'TRINITY_ERR_NOT_FOUND')
})

test('the priority error lists the allowed values, over HTTP and over MQTT', async () => {
  const response = await http<ErrorBody>(hub.httpUrl, 'POST', '/task', { type: 'general', content: 'x', priority: 'urgent' })
  assert.equal(response.status, 400)
  assert.equal(response.body.error.field, 'priority')
  assert.match(response.body.error.message, /low, normal, high, critical/)
  const errors = await watchErrors()
  try {
    await errors.client.publishAsync(hub.coordinator.topics.taskSubmit, JSON.stringify({ type: 'general', content: 'x', priority: 'urgent' }), { qos: 1 })
    await waitFor(() => errors.received.some((e) => e.topic === hub.coordinator.topics.taskSubmit), 10_000, 'the rejection on hub/errors')
    const reason = errors.received.find((e) => e.topic === hub.coordinator.topics.taskSubmit)?.reason ?? ''
    assert.match(reason, /^priority: .*\(low, normal, high, critical\)$/, reason)
    // The rejection is a HubError by the contract's schema, with the registry's code for a bad payload.
    const rejection = errors.received.find((e) => e.topic === hub.coordinator.topics.taskSubmit)
    assert.ok(validate(HubError, rejection).ok, JSON.stringify(rejection))
    assert.equal(rejection?.code, 'TRINITY_ERR_BAD_PAYLOAD')
  } finally {
    await errors.client.endAsync()
  }
})

test('a body without a JSON content type gets 415 in our error shape, naming content-type and what is expected', async () => {
  const json = '{"type":"general","content":"x"}'
  const cases: [Record<string, string>, string | Uint8Array, string][] = [
    [{ 'content-type': 'text/plain' }, json, 'text/plain'],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, json, 'application/x-www-form-urlencoded'], // what curl -d sends
    [{}, new TextEncoder().encode(json), 'none'], // fetch sets no content type for bytes
  ]
  for (const [headers, body, got] of cases) {
    const response = await fetch(`${hub.httpUrl}/task`, { method: 'POST', headers, body })
    const answer = await response.json() as ErrorBody
    assert.equal(response.status, 415, `${got}: ${JSON.stringify(answer)}`)
    assert.equal(answer.error.code, 'TRINITY_ERR_UNSUPPORTED_MEDIA_TYPE')
    assert.equal(answer.error.field, 'content-type')
    assert.equal(answer.error.message, `unsupported media type: content-type: expected application/json, got ${got}`)
  }
  // Routes without a body still need no content type.
  assert.equal((await fetch(`${hub.httpUrl}/sync`, { method: 'POST' })).status, 409)
})

test('POST /send to an unknown recipient: 404 naming the known ids (and the id whose name matches); all, instances and peers still work', async () => {
  // A joined instance named "Builder" with the id `builder`.
  const by = await mqtt.connectAsync(hub.mqttUrl)
  try {
    await by.publishAsync(hub.coordinator.topics.instanceStatus('builder'), JSON.stringify({ state: 'online', session: 1, name: 'Builder' }), { qos: 1 })
    await waitFor(() => hub.coordinator.registry.get('builder') !== undefined, 10_000, 'builder joined')
    const byName = await http<ErrorBody>(hub.httpUrl, 'POST', '/send', { from: 'ops', to: 'Builder', message: 'hi' })
    assert.equal(byName.status, 404)
    assert.equal(byName.body.error.code, 'TRINITY_ERR_RECIPIENT_UNKNOWN')
    assert.equal(byName.body.error.field, 'to')
    assert.match(byName.body.error.message, /known: .*c1/)
    assert.match(byName.body.error.message, /did you mean "builder"\?/)
    const nobody = await http<ErrorBody>(hub.httpUrl, 'POST', '/send', { from: 'ops', to: 'nobody-here', message: 'hi' })
    assert.equal(nobody.status, 404)
    assert.match(nobody.body.error.message, /"nobody-here" is not an instance id \(known: /)
    assert.doesNotMatch(nobody.body.error.message, /did you mean/)
    const log = await http<{ messages: Message[] }>(hub.httpUrl, 'GET', '/messages?limit=1000')
    assert.ok(!log.body.messages.some((m) => m.to === 'Builder' || m.to === 'nobody-here'), 'refused messages are not logged')

    const before = c1.messages.length
    assert.equal((await http(hub.httpUrl, 'POST', '/send', { from: 'ops', to: 'c1', message: 'to c1' })).status, 202)
    await waitFor(() => c1.messages.length === before + 1, 10_000, 'the message in c1\'s inbox')
    assert.equal((await http(hub.httpUrl, 'POST', '/send', { from: 'ops', to: 'all', message: 'to all' })).status, 202)
    const peer = await http<{ to: string }>(hub.httpUrl, 'POST', '/send', { from: 'ops', to: '2', message: 'to computer 2' })
    assert.deepEqual([peer.status, peer.body.to], [202, '2'])
    // `ops` is no instance, but it has sent messages: a reply to it is logged.
    assert.equal((await http(hub.httpUrl, 'POST', '/send', { from: 'c1', to: 'ops', message: 'reply' })).status, 202)
    assert.equal((await http<ErrorBody>(hub.httpUrl, 'POST', '/send', { from: 'c1', to: 'ops2', message: 'reply' })).status, 404)

    // Over MQTT, a message to an unknown id is rejected on hub/errors and not logged.
    const errors = await watchErrors()
    try {
      const topic = hub.coordinator.topics.message('c1', 'nobody-here')
      await errors.client.publishAsync(topic, JSON.stringify({ id: 'to-nobody', from: 'c1', to: 'nobody-here', message: 'lost?', ts: Date.now() }), { qos: 1 })
      await waitFor(() => errors.received.some((e) => e.topic === topic), 10_000, 'the rejection')
      assert.match(errors.received.find((e) => e.topic === topic)?.reason ?? '', /^to: "nobody-here" is not an instance id/)
      assert.equal(errors.received.find((e) => e.topic === topic)?.code, 'TRINITY_ERR_RECIPIENT_UNKNOWN')
      const after = await http<{ messages: Message[] }>(hub.httpUrl, 'GET', '/messages?limit=1000')
      assert.ok(!after.body.messages.some((m) => m.id === 'to-nobody'))
    } finally {
      await errors.client.endAsync()
    }
  } finally {
    await by.publishAsync(hub.coordinator.topics.instanceStatus('builder'), JSON.stringify({ state: 'offline', session: 1 }), { qos: 1 })
    await by.endAsync()
    await waitFor(() => hub.coordinator.registry.get('builder')?.state === 'offline', 10_000, 'builder offline')
    assert.equal((await http(hub.httpUrl, 'DELETE', '/instances/builder')).status, 200)
  }
})

test('metrics carry one trinity_ prefix: trinity_process_*, never trinity_process_process_*', async () => {
  const metrics = await fetch(`${hub.httpUrl}/metrics`).then((r) => r.text())
  assert.match(metrics, /^trinity_process_cpu_seconds_total /m)
  assert.match(metrics, /^trinity_nodejs_heap_size_used_bytes /m)
  assert.doesNotMatch(metrics, /process_process_/)
})

test('a queued task says why it waits (GET /tasks/:id `waiting`), and `submit --wait` says it on timeout', async () => {
  // analyze_data → analytics, which this hub has never seen.
  const queued = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: [1, 2] })
  const record = await http<{ state: string; waiting?: string }>(hub.httpUrl, 'GET', `/tasks/${queued.body.id}`)
  assert.equal(record.body.state, 'queued')
  assert.equal(record.body.waiting, 'no online instance can take analyze_data (route: analytics; analytics matches no instance)')
  // The CLI reads that reason when its --wait runs out.
  const cli = spawn(process.execPath, [CLI, 'submit', 'analyze_data', '[3]', '--wait', '--timeout', '1', '--url', hub.httpUrl], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  cli.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((resolve) => cli.once('exit', resolve))
  assert.equal(code, 1)
  assert.match(stderr, /^task \S+ still queued after 1s: no online instance can take analyze_data \(route: analytics; analytics matches no instance\)\n$/)
  await http(hub.httpUrl, 'POST', `/tasks/${queued.body.id}/cancel`)
})

async function watchErrors(): Promise<{ client: mqtt.MqttClient; received: HubError[] }> {
  const client = await mqtt.connectAsync(hub.mqttUrl)
  const received: HubError[] = []
  client.on('message', (_topic, payload) => received.push(JSON.parse(payload.toString()) as HubError))
  await client.subscribeAsync(hub.coordinator.topics.hubErrors, { qos: 0 })
  return { client, received }
}
