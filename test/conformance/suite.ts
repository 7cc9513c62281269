/**
 * The hub conformance suite: the same behaviour, with real MQTT clients and
 * real HTTP, against the embedded broker, a real Mosquitto and a 3-node
 * nats-server cluster (both `broker.mode: external`). Each test gets its own
 * hub, data dir and topic prefix, so tests run in parallel on one broker.
 * What nats-server 2.9 cannot carry (a `.` in a topic level) is a test of
 * the hub's refusal there, of the behaviour elsewhere.
 */
import { spawn } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { topicsFor } from '../../src/contract/topics.js'
import { TEST_ENV } from '../../src/config/env.js'
import { TestInstance, type TestInstanceOptions } from '../helpers/instance.js'
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.js'
import { ROOT, http, startMosquitto, startTestHub, tempDir, testConfig, waitFor, type ConfigObject, type Mosquitto } from '../helpers/hub.js'

/** `external`: a real Mosquitto; `nats`: a 3-node nats-server cluster (hub on node 1, instances on node 2). */
export type Mode = 'embedded' | 'external' | 'nats'

let counter = 0

export function conformance(mode: Mode): void {
  describe(`hub conformance (${mode} broker)`, () => {
    const dir = tempDir()
    let mosquitto: Mosquitto | undefined
    let nats: NatsCluster | undefined
    const cleanups: (() => unknown)[] = [] // each awaited, so a cleanup may return a promise

    before(async () => {
      if (mode === 'external') mosquitto = await startMosquitto(dir.path)
      if (mode === 'nats') nats = await startNatsCluster(dir.path)
    })
    after(async () => {
      try {
        for (const cleanup of cleanups.reverse()) await cleanup()
      } finally {
        // The brokers go whatever a cleanup before them did (a throw; a hang is the lifeline's, nats-cluster.ts).
        await mosquitto?.stop()
        await nats?.stop()
        dir.remove()
      }
    })

    /** A hub plus helpers bound to it. */
    async function setup(overrides: ConfigObject = {}) {
      const prefix = `t${process.pid}x${++counter}`
      const data = tempDir()
      cleanups.push(() => data.remove()) // reversed: after the hub below has stopped
      const dataDir = data.path
      const broker = mode === 'external' ? { mode: 'external', url: mosquitto?.url }
        : mode === 'nats' ? { mode: 'external', url: nats?.nodes[0]?.mqttUrl, flavor: 'nats' }
        : {}
      const config = await testConfig(dataDir, { hub: { topicPrefix: prefix }, broker, ...overrides })
      const hub = await startTestHub(config)
      cleanups.push(() => hub.stop())
      // On the cluster the instances are on another node than the hub: what a cluster is for.
      const instanceUrl = nats?.nodes[1]?.mqttUrl ?? hub.mqttUrl
      const instances: TestInstance[] = []
      const instance = async (options: Omit<TestInstanceOptions, 'url' | 'prefix'>): Promise<TestInstance> => {
        const i = await TestInstance.start({ url: instanceUrl, prefix, ...options })
        instances.push(i)
        cleanups.push(() => i.close())
        await waitFor(() => hub.coordinator.registry.get(options.id)?.state === 'online', 5000, `${options.id} online`)
        return i
      }
      const submit = async (body: unknown): Promise<{ id: string; state: string; assigned: string[] }> => {
        const response = await http<{ id: string; state: string; assigned: string[] }>(hub.httpUrl, 'POST', '/task', body)
        assert.equal(response.status, 202, JSON.stringify(response.body))
        return response.body
      }
      const task = async (id: string): Promise<TaskRecord> => (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body
      const finished = async (id: string, timeoutMs = 10_000): Promise<TaskRecord> => {
        let record: TaskRecord | undefined
        await waitFor(async () => { record = await task(id); return ['completed', 'failed', 'dead', 'cancelled'].includes(record.state) }, timeoutMs, `task ${id} to finish`)
        return record as TaskRecord
      }
      return { hub, prefix, topics: topicsFor(prefix), instanceUrl, instance, instances, submit, task, finished }
    }

    test('every seed routing rule reaches its instances, with fan-out to two', async () => {
      const h = await setup()
      for (const id of ['araya', 'builder', 'observatory', 'visitor-intelligence', 'analytics', 'c1']) await h.instance({ id })
      const expected: Record<string, string[]> = {
        pattern_analysis: ['araya', 'c1'], build_project: ['builder', 'c1'], monitor_system: ['observatory'],
        track_user: ['visitor-intelligence'], analyze_data: ['analytics'], bug_fix: ['c1'], deployment: ['c1'], general: ['c1'],
      }
      for (const [type, instances] of Object.entries(expected)) {
        const { id } = await h.submit({ type, content: `a ${type} task` })
        const done = await h.finished(id)
        assert.equal(done.state, 'completed', `${type}: ${JSON.stringify(done)}`)
        assert.deepEqual(done.assignments.map((a) => a.instance).sort(), [...instances].sort(), type)
        if (instances.length === 2) assert.deepEqual((done.result as { instance: string }[]).map((r) => r.instance).sort(), [...instances].sort())
        else assert.deepEqual(done.result, { by: instances[0] })
      }
    })

    test('an unknown task type is rejected with a clear error, or routed to the fallback', async () => {
      const h = await setup()
      const rejected = await http<{ error: { code: string; message: string } }>(h.hub.httpUrl, 'POST', '/task', { type: 'paint_house', content: 'x' })
      assert.equal(rejected.status, 422)
      assert.equal(rejected.body.error.code, 'TRINITY_ERR_TASK_TYPE_UNKNOWN')
      assert.match(rejected.body.error.message, /paint_house/)
      const f = await setup({ tasks: { fallback: { targets: ['c1'] } } })
      await f.instance({ id: 'c1' })
      const { id } = await f.submit({ type: 'paint_house', content: 'x' })
      assert.equal((await f.finished(id)).state, 'completed')
    })

    test('a backlog is served critical > high > normal > low, FIFO within a level', async () => {
      const h = await setup()
      const c1 = await h.instance({ id: 'c1', concurrency: 1, manual: true })
      const blocker = await h.submit({ type: 'general', content: 'blocker' })
      await c1.waitForTasks(1)
      const order = ['low-1', 'normal-1', 'critical-1', 'high-1', 'low-2', 'critical-2', 'normal-2']
      for (const name of order) await h.submit({ type: 'general', content: name, priority: name.split('-')[0] })
      const served: unknown[] = []
      let current = c1.received[0]
      assert.equal(current?.id, blocker.id)
      for (let n = 1; n <= order.length; n++) {
        await c1.report({ taskId: current!.id, leaseToken: current!.leaseToken, state: 'completed', output: null })
        await c1.waitForTasks(n + 1)
        current = c1.received[n]
        served.push(current?.content)
      }
      assert.deepEqual(served, ['critical-1', 'critical-2', 'high-1', 'normal-1', 'normal-2', 'low-1', 'low-2'])
    })

    test('load is balanced across two instances of one role', async () => {
      const h = await setup({ instances: [{ id: 'analytics-1', role: 'analytics' }, { id: 'analytics-2', role: 'analytics' }] })
      const a = await h.instance({ id: 'analytics-1', role: 'analytics', concurrency: 2, manual: true })
      const b = await h.instance({ id: 'analytics-2', role: 'analytics', concurrency: 2, manual: true })
      const ids = []
      for (let i = 0; i < 4; i++) ids.push((await h.submit({ type: 'analyze_data', content: [i] })).id)
      await a.waitForTasks(2)
      await b.waitForTasks(2)
      assert.equal(a.received.length + b.received.length, 4)
      // Full now: the fifth waits in the queue rather than overloading either.
      const fifth = await h.submit({ type: 'analyze_data', content: [5] })
      assert.deepEqual(fifth.assigned, [])
      assert.equal(fifth.state, 'queued')
      const first = b.received[0]!
      await b.report({ taskId: first.id, leaseToken: first.leaseToken, state: 'completed', output: 1 })
      await b.waitForTasks(3)
      assert.equal(b.received[2]?.id, fifth.id)
    })

    test('round-robin rotates among instances of a role even when one alone could take everything', async () => {
      const h = await setup({
        instances: [{ id: 'rr-a', role: 'analytics' }, { id: 'rr-b', role: 'analytics' }],
        routes: { analyze_data: { targets: ['analytics'], strategy: 'round-robin' } },
      })
      await h.instance({ id: 'rr-a', role: 'analytics' })
      await h.instance({ id: 'rr-b', role: 'analytics' })
      // A birth's PUBACK is not the coordinator having read it: under load the first tasks went
      // to rr-a alone while rr-b's birth was still on its way.
      await waitFor(() => ['rr-a', 'rr-b'].every((id) => h.hub.coordinator.registry.get(id)?.state === 'online'), 30_000, 'both online')
      const owners: (string | null)[] = []
      for (let i = 0; i < 4; i++) {
        const { id } = await h.submit({ type: 'analyze_data', content: i })
        owners.push((await h.finished(id)).assignments[0]?.instance ?? null)
      }
      assert.deepEqual(owners, ['rr-a', 'rr-b', 'rr-a', 'rr-b'])
    })

    test('an instance SIGKILLed mid-task: the task is re-run on another and completes once', async () => {
      const h = await setup({ instances: [{ id: 'worker-a', role: 'analytics' }, { id: 'worker-b', role: 'analytics' }] })
      const child = spawn(process.execPath, [`${ROOT}/dist/test/fixtures/instance-process.js`], {
        env: { ...process.env, [TEST_ENV.testInstance]: JSON.stringify({ url: h.instanceUrl, prefix: h.prefix, id: 'worker-a', role: 'analytics', hang: true }) },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      cleanups.push(() => child.kill('SIGKILL'))
      let out = ''
      child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
      await waitFor(() => out.includes('ready') && h.hub.coordinator.registry.get('worker-a')?.state === 'online', 10_000, 'worker-a')
      const events = await collect(h.hub.mqttUrl, h.topics.anyTaskEvent)
      cleanups.push(() => events.stop())
      const { id } = await h.submit({ type: 'analyze_data', content: [1, 2, 3] })
      await waitFor(async () => (await h.task(id)).state === 'running', 5000, 'running on worker-a')
      await h.instance({ id: 'worker-b', role: 'analytics' })
      child.kill('SIGKILL')
      const done = await h.finished(id)
      assert.equal(done.state, 'completed')
      assert.deepEqual(done.result, { by: 'worker-b' })
      assert.equal(done.assignments[0]?.attempts, 2)
      assert.deepEqual(done.assignments[0]?.tried, ['worker-a'])
      await new Promise((r) => setTimeout(r, 300))
      const completions = events.received.filter((e) => (e as TaskRecord).id === id && (e as TaskRecord).state === 'completed')
      assert.equal(completions.length, 1)
    })

    test('a task for an instance that is offline waits in the queue until it comes online', async () => {
      const h = await setup()
      const { id, assigned, state } = await h.submit({ type: 'monitor_system', content: 'later' })
      assert.deepEqual(assigned, [])
      assert.equal(state, 'queued')
      await new Promise((r) => setTimeout(r, 300))
      assert.equal((await h.task(id)).state, 'queued')
      await h.instance({ id: 'observatory' })
      assert.equal((await h.finished(id)).state, 'completed')
    })

    test('leases that keep expiring make a dead letter, listed and replayable', async () => {
      // 3 s: the replayed task must be answered within one lease (200 ms was missed under load).
      const h = await setup({ tasks: { lease: '3s', maxAttempts: 2 } })
      const silent = await h.instance({ id: 'c1', manual: true })
      const { id } = await h.submit({ type: 'general', content: 'nobody answers' })
      await waitFor(async () => (await h.task(id)).state === 'dead', 60_000, 'dead letter')
      assert.equal(silent.received.filter((t) => t.id === id).length, 2)
      const dead = await http<{ tasks: TaskRecord[] }>(h.hub.httpUrl, 'GET', '/tasks?state=dead')
      assert.match(dead.body.tasks.find((t) => t.id === id)?.error ?? '', /lease expired/)
      await silent.close()
      await h.instance({ id: 'c1', clientId: `${h.prefix}-c1-b`, session: Date.now() + 1 })
      assert.equal((await http(h.hub.httpUrl, 'POST', `/tasks/${id}/retry`)).status, 202)
      assert.equal((await h.finished(id)).state, 'completed')
    })

    test('the message log keeps at most messages.maxCount', async () => {
      const h = await setup({ messages: { maxCount: 3 } })
      // `to: all`: a recipient the hub knows (a message to an unknown id is refused with 404).
      for (let i = 1; i <= 5; i++) assert.equal((await http(h.hub.httpUrl, 'POST', '/send', { from: 'a', to: 'all', message: `m${i}` })).status, 202)
      const log = await http<{ messages: { message: string }[] }>(h.hub.httpUrl, 'GET', '/messages?limit=50')
      assert.deepEqual(log.body.messages.map((m) => m.message), ['m3', 'm4', 'm5'])
    })

    test('a late report from an earlier assignment cannot finish the task again', async () => {
      const h = await setup({ instances: [{ id: 'w1', role: 'analytics' }, { id: 'w2', role: 'analytics' }] })
      const w1 = await h.instance({ id: 'w1', role: 'analytics', manual: true })
      const { id } = await h.submit({ type: 'analyze_data', content: 'x' })
      await w1.waitForTasks(1)
      const stale = w1.received[0]!
      const w2 = await h.instance({ id: 'w2', role: 'analytics', manual: true })
      // w1 is lost (its Will); the retry goes to w2. (A short lease raced here: under load
      // w2's ran out too before it reported.) Then w1 is back and reports what it had.
      w1.dropConnection()
      await w2.waitForTasks(1)
      await w1.connect()
      await w1.report({ taskId: id, leaseToken: stale.leaseToken, state: 'completed', output: 'stale' })
      await new Promise((r) => setTimeout(r, 200))
      assert.notEqual((await h.task(id)).state, 'completed')
      const fresh = w2.received[0]!
      await w2.report({ taskId: id, leaseToken: fresh.leaseToken, state: 'completed', output: 'fresh' })
      assert.equal((await h.finished(id)).result, 'fresh')
    })

    test('a persistent-session instance offline during assignment receives the task on reconnect', async () => {
      const h = await setup({ health: { interval: '30s' } })
      const c1 = await h.instance({ id: 'c1', clean: false })
      await c1.disconnectQuietly()
      const { id, assigned } = await h.submit({ type: 'general', content: 'while you were away' })
      assert.deepEqual(assigned, ['c1'])
      await c1.connect()
      const done = await h.finished(id)
      assert.equal(done.state, 'completed')
      assert.equal(c1.received.length, 1)
    })

    test('a Last Will marks the instance offline at once; a stale Will after a new birth is ignored', async () => {
      const h = await setup({ health: { interval: '30s' } })
      const old = await h.instance({ id: 'c1', session: 1, clean: true, clientId: `${h.prefix}-c1-old` })
      await h.instance({ id: 'c1', session: 2, clean: true, clientId: `${h.prefix}-c1-new` })
      // The old connection's Will (session 1) arrives after the new birth (session 2).
      old.dropConnection()
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(h.hub.coordinator.registry.get('c1')?.state, 'online')
      const fresh = h.instances[1]!
      fresh.dropConnection()
      await waitFor(() => h.hub.coordinator.registry.get('c1')?.state === 'offline', 3000, 'offline by Will')
    })

    test('malformed MQTT payloads are rejected with a reason and the hub stays up', async () => {
      const h = await setup()
      await h.instance({ id: 'c1' })
      const errors = await collect(h.hub.mqttUrl, h.topics.hubErrors)
      cleanups.push(() => errors.stop())
      const client = await mqtt.connectAsync(h.hub.mqttUrl)
      cleanups.push(() => client.endAsync())
      await client.publishAsync(h.topics.taskSubmit, 'not json {', { qos: 1 })
      await client.publishAsync(h.topics.taskSubmit, JSON.stringify({ type: 'general' }), { qos: 1 })
      await client.publishAsync(h.topics.taskSubmit, JSON.stringify({ type: 'general', content: 1, priority: 'urgent' }), { qos: 1 })
      await client.publishAsync(h.topics.instanceReport('c1'), JSON.stringify({ taskId: 'nope', state: 'done' }), { qos: 1 })
      await client.publishAsync(h.topics.instanceStatus('ghost'), Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 })
      await waitFor(() => errors.received.length >= 5, 5000, 'five rejections')
      const reasons = errors.received.map((e) => (e as { reason: string }).reason).join('\n')
      assert.match(reasons, /not valid JSON/)
      assert.match(reasons, /content/)
      assert.match(reasons, /priority/)
      assert.match(reasons, /state/)
      const { id } = await h.submit({ type: 'general', content: 'still alive' })
      assert.equal((await h.finished(id)).state, 'completed')
    })

    test('a task submitted over MQTT with a client id is idempotent and completes', async () => {
      const h = await setup()
      await h.instance({ id: 'c1' })
      const client = await mqtt.connectAsync(h.hub.mqttUrl)
      cleanups.push(() => client.endAsync())
      const submit = JSON.stringify({ id: 'job-42', type: 'general', content: 'once', priority: 'high' })
      await client.publishAsync(h.topics.taskSubmit, submit, { qos: 1 })
      await client.publishAsync(h.topics.taskSubmit, submit, { qos: 1 })
      const done = await h.finished('job-42')
      assert.equal(done.state, 'completed')
      assert.equal(done.priority, 'high')
      const all = await http<{ tasks: TaskRecord[] }>(h.hub.httpUrl, 'GET', '/tasks?limit=100')
      assert.equal(all.body.tasks.filter((t) => t.id === 'job-42').length, 1)
    })

    test('messages: POST /send and MQTT publishes are logged and delivered to inboxes', async () => {
      const h = await setup()
      const araya = await h.instance({ id: 'araya' })
      const builder = await h.instance({ id: 'builder' })
      const sent = await http<{ id: string }>(h.hub.httpUrl, 'POST', '/send', { from: 'c1', to: 'araya', message: 'hello araya' })
      assert.equal(sent.status, 202)
      await builder.client.publishAsync(h.topics.message('builder', 'all'), JSON.stringify({ id: 'm-1', from: 'builder', to: 'all', message: 'hi all', ts: Date.now() }), { qos: 1 })
      await waitFor(() => araya.messages.length === 2, 5000, 'araya to get two messages')
      assert.equal(builder.messages.length, 0, 'a broadcast is not echoed to its sender')
      const log = await http<{ messages: { message: string }[] }>(h.hub.httpUrl, 'GET', '/messages?limit=50')
      assert.deepEqual(log.body.messages.map((m) => m.message), ['hello araya', 'hi all'])
    })

    // ids may hold a `.` (ID_PATTERN); nats-server 2.9 closes the connection of a client that
    // publishes one inside a topic level, so there the hub refuses them (src/coordinator/broker-ids.ts).
    if (mode !== 'nats') {
      test('ids with a "." join, are routed to and complete', async () => {
        const h = await setup({ instances: [{ id: 'w.eu-1', role: 'analytics' }] })
        const w = await h.instance({ id: 'w.eu-1', role: 'analytics' })
        const { id } = await h.submit({ id: 'job.1', type: 'analyze_data', content: 'x' })
        assert.equal(id, 'job.1')
        const done = await h.finished(id)
        assert.equal(done.state, 'completed')
        assert.deepEqual(done.result, { by: 'w.eu-1' })
        assert.equal((await http(h.hub.httpUrl, 'POST', '/send', { from: 'ops.desk', to: 'w.eu-1', message: 'dotted' })).status, 202)
        await waitFor(() => w.messages.length === 1, 5000, 'the message to w.eu-1')
      })
    }
    if (mode === 'external') {
      // On nats-server 2.9 itself such a birth never reaches the hub (the publisher is
      // disconnected first); a broker that delivers it shows the hub's refusal at join.
      test('broker.flavor nats: a birth from an id with a "." is refused at join with TRINITY_ERR_ID_UNSUPPORTED', async () => {
        const h = await setup({ broker: { mode: 'external', url: mosquitto?.url, flavor: 'nats' } })
        const errors = await collect(h.hub.mqttUrl, h.topics.hubErrors)
        cleanups.push(() => errors.stop())
        const dotted = await TestInstance.start({ url: h.instanceUrl, prefix: h.prefix, id: 'w.eu-1' })
        cleanups.push(() => dotted.close())
        await waitFor(() => errors.received.some((e) => (e as { code: string }).code === 'TRINITY_ERR_ID_UNSUPPORTED'), 10_000, 'the birth refused')
        const refusal = errors.received.find((e) => (e as { code: string }).code === 'TRINITY_ERR_ID_UNSUPPORTED') as { topic: string; reason: string }
        assert.equal(refusal.topic, h.topics.instanceStatus('w.eu-1'))
        assert.match(refusal.reason, /instanceId: "w\.eu-1" contains "\."/)
        assert.equal(h.hub.coordinator.registry.get('w.eu-1'), undefined)
        const c1 = await h.instance({ id: 'c1' })
        const { id } = await h.submit({ type: 'general', content: 'the others join as ever' })
        assert.equal((await h.finished(id)).state, 'completed')
        assert.equal(c1.received.length, 1)
      })
    }
    if (mode === 'nats') {
      test('ids with a "." are refused with TRINITY_ERR_ID_UNSUPPORTED: in the config at start, over HTTP and MQTT at submit', async () => {
        const refused = await testConfig(dir.path, {
          hub: { topicPrefix: 'dotted' }, broker: { mode: 'external', url: nats?.nodes[0]?.mqttUrl, flavor: 'nats' },
          instances: [{ id: 'w.eu-1', role: 'analytics' }],
        })
        assert.throws(() => parseConfig(stringify(refused), 'nats.yaml'), /nats\.yaml:\d+:\d+: instances\[0\]\.id: expected an instance id without "\." with broker\.flavor "nats"/)
        const h = await setup()
        await h.instance({ id: 'c1' })
        const errors = await collect(h.hub.mqttUrl, h.topics.hubErrors)
        cleanups.push(() => errors.stop())
        const submitted = await http<{ error: { code: string; field: string } }>(h.hub.httpUrl, 'POST', '/task', { id: 'job.1', type: 'general', content: 'x' })
        assert.equal(submitted.status, 400)
        assert.equal(submitted.body.error.code, 'TRINITY_ERR_ID_UNSUPPORTED')
        assert.equal(submitted.body.error.field, 'id')
        const sent = await http<{ error: { code: string; field: string } }>(h.hub.httpUrl, 'POST', '/send', { from: 'ops.desk', to: 'c1', message: 'dotted' })
        assert.equal(sent.status, 400)
        assert.equal(sent.body.error.code, 'TRINITY_ERR_ID_UNSUPPORTED')
        assert.equal(sent.body.error.field, 'from')
        const client = await mqtt.connectAsync(h.hub.mqttUrl)
        cleanups.push(() => client.endAsync())
        await client.publishAsync(h.topics.taskSubmit, JSON.stringify({ id: 'job.2', type: 'general', content: 'x' }), { qos: 1 })
        await waitFor(() => errors.received.some((e) => (e as { code: string }).code === 'TRINITY_ERR_ID_UNSUPPORTED'), 10_000, 'the MQTT submission refused')
        assert.match((errors.received.find((e) => (e as { code: string }).code === 'TRINITY_ERR_ID_UNSUPPORTED') as { reason: string }).reason, /id: "job\.2" contains "\."/)
        for (const id of ['job.1', 'job.2']) assert.equal((await http(h.hub.httpUrl, 'GET', `/tasks/${id}`)).status, 404)
        // Had the hub published task/job.1/event, nats-server would have closed its connection.
        const { id } = await h.submit({ type: 'general', content: 'still connected' })
        assert.equal((await h.finished(id)).state, 'completed')
        assert.equal(h.hub.coordinator.connected, true)
        assert.equal(h.instances[0]?.client.connected, true)
      })
    }
  })
}

async function collect(url: string, filter: string): Promise<{ received: unknown[]; stop: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url)
  const received: unknown[] = []
  client.on('message', (_t, payload) => received.push(JSON.parse(payload.toString())))
  await client.subscribeAsync(filter, { qos: 1 })
  return { received, stop: async () => { await client.endAsync() } }
}
