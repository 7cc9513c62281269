/**
 * Health checks: HTTP probes for instances with a `healthUrl` (online,
 * degraded when slow or erroring, hysteresis on the way down and up, a slow
 * endpoint never holding up the others) and MQTT pings for the rest (a live
 * instance stays online; a silent one goes timeout → offline and its task is
 * re-queued to another instance of its role).
 *
 * Every test gets its own hub. States are read three ways: the registry,
 * GET /instances, and the retained `{prefix}/health/{id}` records, which the
 * coordinator publishes once per check, in order, so they give the exact
 * sequence of states without depending on when the test samples.
 */
import { createServer, type Server, type ServerResponse } from 'node:http'
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import type { Health } from '../src/contract/payloads/instance.js'
import { topicsFor, type TopicContract } from '../src/contract/topics.js'
import type { InstanceList, InstanceView } from '../src/contract/http.js'
import type { Hub } from '../src/hub.js'
import { TestInstance, type TestInstanceOptions } from './helpers/instance.js'
import { http, startTestHub, tempDir, testConfig, waitFor, type ConfigObject } from './helpers/hub.js'

type Cleanup = () => unknown // awaited, so it may return a promise

/** Cleanups for one test, run last-in first-out when the test ends (pass or fail). */
function cleanupsFor(t: TestContext): (fn: Cleanup) => void {
  const stack: Cleanup[] = []
  t.after(async () => {
    for (const fn of stack.reverse()) {
      try { await fn() } catch { /* keep cleaning */ }
    }
  })
  return (fn) => { stack.push(fn) }
}

/** How the test health endpoint answers the next request. */
type Behavior =
  | { kind: 'ok' }
  | { kind: 'delay'; ms: number }
  | { kind: 'status'; code: number }
  | { kind: 'hang' }

/** A health endpoint on 127.0.0.1, port 0, whose behaviour the test switches. */
class HealthEndpoint {
  behavior: Behavior = { kind: 'ok' }
  requests = 0
  /** Requests received whose response is not finished (answered, or the prober gave up). */
  open = 0
  private readonly timers = new Set<NodeJS.Timeout>()

  private constructor(private readonly server: Server, readonly url: string) {}

  static async start(): Promise<HealthEndpoint> {
    let endpoint: HealthEndpoint | undefined
    const server = createServer((_req, res) => endpoint?.handle(res))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    endpoint = new HealthEndpoint(server, `http://127.0.0.1:${address.port}/health`)
    return endpoint
  }

  private handle(res: ServerResponse): void {
    this.requests++
    this.open++
    res.once('close', () => { this.open-- })
    const finish = (code: number): void => {
      if (!res.destroyed && !res.writableEnded) res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: code < 400 }))
    }
    const behavior = this.behavior
    switch (behavior.kind) {
      case 'ok': return finish(200)
      case 'status': return finish(behavior.code)
      case 'hang': return // never answers; the prober's timeout ends it
      case 'delay': {
        const timer = setTimeout(() => { this.timers.delete(timer); finish(200) }, behavior.ms)
        this.timers.add(timer)
        return
      }
    }
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

interface HealthRecord extends Health { retain: boolean }

/** Every record published on one instance's health topic, in order of arrival. */
async function watchHealth(url: string, topics: TopicContract, id: string): Promise<{ records: HealthRecord[]; stop: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
  const records: HealthRecord[] = []
  client.on('message', (_topic, payload, packet) => {
    if (payload.length > 0) records.push({ ...(JSON.parse(payload.toString()) as Health), retain: packet.retain })
  })
  await client.subscribeAsync(topics.health(id), { qos: 1 })
  return { records, stop: async () => { await client.endAsync() } }
}

/**
 * The retained record on `{prefix}/health/{id}`, read by a fresh subscriber.
 * A live record published while the broker subscribes can arrive before the
 * retained replay (MQTT allows it, and checks run every 200 ms here), so this
 * waits for the delivery that carries the retain flag rather than the first.
 */
async function retainedHealth(url: string, topics: TopicContract, id: string): Promise<HealthRecord> {
  const watch = await watchHealth(url, topics, id)
  try {
    await waitFor(() => watch.records.some((r) => r.retain), 5000, `the retained record on ${topics.health(id)}: ${JSON.stringify(watch.records)}`)
    return watch.records.find((r) => r.retain)!
  } finally {
    await watch.stop()
  }
}

/** The states of a run of health records, in order. */
const states = (records: readonly HealthRecord[]): string[] => records.map((r) => r.state)

/**
 * The misses that took an instance offline: the first `offline` record at or
 * after `from`, with the unbroken run of `timeout` misses (no response time)
 * just before it. A pass in between resets the count, so the run is exactly
 * `missesBeforeOffline` long, even if a slow check missed before `from`.
 */
function missesUntilOffline(records: readonly HealthRecord[], from: number): HealthRecord[] {
  const end = records.findIndex((r, i) => i >= from && r.state === 'offline')
  assert.ok(end >= 0, `an offline record after #${from}: ${JSON.stringify(records)}`)
  let start = end
  while (start > 0 && records[start - 1]!.state === 'timeout' && records[start - 1]!.responseMs === null) start--
  return records.slice(start, end + 1)
}

async function startHub(defer: (fn: Cleanup) => void, overrides: ConfigObject) {
  const dir = tempDir()
  defer(() => dir.remove())
  const hub: Hub = await startTestHub(await testConfig(dir.path, overrides))
  defer(() => hub.stop())
  const topics = topicsFor(hub.config.hub.topicPrefix)
  const registry = hub.coordinator.registry
  const get = (id: string) => {
    const instance = registry.get(id)
    assert.ok(instance !== undefined, `${id} is in the registry`)
    return instance
  }
  const view = async (id: string): Promise<InstanceView> => {
    const response = await http<InstanceList>(hub.httpUrl, 'GET', '/instances')
    assert.equal(response.status, 200)
    const found = response.body.instances.find((i) => i.id === id)
    assert.ok(found !== undefined, `${id} in GET /instances: ${JSON.stringify(response.body)}`)
    return found
  }
  const instance = async (options: Omit<TestInstanceOptions, 'url'>): Promise<TestInstance> => {
    const i = await TestInstance.start({ url: hub.mqttUrl, ...options })
    defer(() => i.close())
    await waitFor(() => registry.get(options.id)?.state === 'online', 5000, `${options.id} online`)
    return i
  }
  return { hub, topics, get, view, instance }
}

test('an instance with a healthUrl becomes online by HTTP checks, with response times and a retained health record', async (t) => {
  const defer = cleanupsFor(t)
  const endpoint = await HealthEndpoint.start()
  defer(() => endpoint.close())
  const h = await startHub(defer, {
    health: { interval: '200ms', timeout: '2s', degradedAfter: '5s' },
    instances: [{ id: 'web', role: 'web', healthUrl: endpoint.url }],
  })
  // Requests counted too: on a loaded machine a check can time out before the endpoint sees it.
  await waitFor(() => h.get('web').state === 'online' && h.get('web').checks >= 2 && endpoint.requests >= 2, 10_000, 'web online after two checks')
  assert.ok(endpoint.requests >= 2, 'the hub checked over HTTP')
  assert.equal(h.get('web').connected, false, 'no birth: online by the HTTP check alone')

  const view = await h.view('web')
  assert.equal(view.state, 'online')
  assert.equal(view.healthUrl, endpoint.url)
  assert.equal(view.reason, null)
  assert.ok(view.checks >= 2, JSON.stringify(view))
  for (const key of ['last', 'avg', 'p95'] as const) {
    const value = view.responseMs[key]
    assert.equal(typeof value, 'number', `responseMs.${key}: ${JSON.stringify(view.responseMs)}`)
    assert.ok(Number.isFinite(value) && (value as number) >= 0, `responseMs.${key}: ${JSON.stringify(view.responseMs)}`)
  }

  const retained = await retainedHealth(h.hub.mqttUrl, h.topics, 'web')
  // retainedHealth fails unless a fresh subscriber gets a delivery with the retain flag.
  assert.equal(retained.state, 'online')
  assert.equal(typeof retained.responseMs, 'number')
  assert.equal(typeof retained.avgMs, 'number', 'the rolling average rides on the retained record')
  assert.equal(typeof retained.p95Ms, 'number', 'so does the 95th percentile')
  assert.equal(typeof retained.checkedAt, 'number')
  assert.equal(retained.reason, undefined)
})

test('an HTTP health endpoint slower than degradedAfter makes the instance degraded', async (t) => {
  const defer = cleanupsFor(t)
  const endpoint = await HealthEndpoint.start()
  defer(() => endpoint.close())
  // Wide margins both ways: a 1.5 s answer is over degradedAfter however fast the machine, and
  // far from the timeout however loaded (with 250 ms against a 1 s timeout, a loaded run timed out).
  endpoint.behavior = { kind: 'delay', ms: 1500 }
  const h = await startHub(defer, {
    health: { interval: '300ms', timeout: '30s', degradedAfter: '500ms' },
    instances: [{ id: 'slow-web', healthUrl: endpoint.url }],
  })

  await waitFor(() => h.get('slow-web').checks >= 2, 60_000, 'two checks of slow-web')
  const view = await h.view('slow-web')
  assert.equal(view.state, 'degraded', JSON.stringify(view))
  assert.match(view.reason ?? '', /slow/)
  assert.ok((view.responseMs.last ?? 0) > 500, `the recorded time is over degradedAfter: ${JSON.stringify(view.responseMs)}`)
  const retained = await retainedHealth(h.hub.mqttUrl, h.topics, 'slow-web')
  assert.equal(retained.state, 'degraded')
  assert.equal(typeof retained.responseMs, 'number')
  assert.match(retained.reason ?? '', /slow/)

  // Fast again: back to online.
  endpoint.behavior = { kind: 'ok' }
  await waitFor(() => h.get('slow-web').state === 'online', 60_000, 'slow-web online once it answers fast')
  assert.equal((await h.view('slow-web')).reason, null)
})

test('an HTTP health endpoint answering 500 makes the instance degraded, with the status in the reason', async (t) => {
  const defer = cleanupsFor(t)
  const endpoint = await HealthEndpoint.start()
  defer(() => endpoint.close())
  endpoint.behavior = { kind: 'status', code: 500 }
  const h = await startHub(defer, {
    health: { interval: '200ms', timeout: '1s', degradedAfter: '1s' },
    instances: [{ id: 'err-web', healthUrl: endpoint.url }],
  })

  await waitFor(() => h.get('err-web').checks >= 2, 10_000, 'two checks of err-web')
  const view = await h.view('err-web')
  assert.equal(view.state, 'degraded', JSON.stringify(view))
  assert.match(view.reason ?? '', /500/)
  assert.equal(typeof view.responseMs.last, 'number', 'an erroring answer is still an answer, with a time')
  const retained = await retainedHealth(h.hub.mqttUrl, h.topics, 'err-web')
  assert.equal(retained.state, 'degraded')
  assert.match(retained.reason ?? '', /500/)
})

test('hysteresis: timeout before offline (missesBeforeOffline 3), two passes before online (passesBeforeOnline 2)', async (t) => {
  const defer = cleanupsFor(t)
  const endpoint = await HealthEndpoint.start()
  defer(() => endpoint.close())
  const h = await startHub(defer, {
    // A timeout a loaded machine never reaches by accident: only the hanging endpoint misses.
    health: { interval: '200ms', timeout: '2s', degradedAfter: '5s', missesBeforeOffline: 3, passesBeforeOnline: 2 },
    instances: [{ id: 'flaky', healthUrl: endpoint.url }],
  })
  const watch = await watchHealth(h.hub.mqttUrl, h.topics, 'flaky')
  defer(() => watch.stop())

  // Starting offline, one pass is not enough either.
  await waitFor(() => h.get('flaky').passes >= 1, 10_000, 'first pass')
  await waitFor(() => h.get('flaky').state === 'online', 10_000, 'flaky online')
  assert.ok(h.get('flaky').passes >= 2, `online only after two passes (passes=${h.get('flaky').passes})`)

  // The endpoint stops answering. (The watcher may lag the registry on a loaded machine: count
  // from its own online record, so the retained offline record from before is never taken for the outage.)
  await waitFor(() => watch.records.some((r) => r.state === 'online'), 60_000, 'the online record on the watcher')
  const down = watch.records.length
  endpoint.behavior = { kind: 'hang' }

  let first: InstanceView | undefined
  await waitFor(async () => { first = await h.view('flaky'); return first.state !== 'online' }, 10_000, 'the first miss')
  assert.equal(first?.state, 'timeout', `the first miss is a timeout, not offline: ${JSON.stringify(first)}`)
  assert.match(first?.reason ?? '', /no answer within 2000 ms/)
  await waitFor(() => h.get('flaky').misses >= 2, 10_000, 'the second miss')
  const afterTwo = h.get('flaky')
  if (afterTwo.misses === 2) assert.equal(afterTwo.state, 'timeout', 'still timeout after two misses')
  let offline: InstanceView | undefined
  await waitFor(async () => { offline = await h.view('flaky'); return offline.state === 'offline' }, 10_000, 'offline')
  assert.ok(h.get('flaky').misses >= 3, `offline only after three misses (misses=${h.get('flaky').misses})`)

  // The exact sequence, one record per check: timeout, timeout, offline.
  await waitFor(() => watch.records.slice(down).some((r) => r.state === 'offline'), 5000, 'the offline record')
  assert.deepEqual(states(missesUntilOffline(watch.records, down)), ['timeout', 'timeout', 'offline'], JSON.stringify(watch.records.slice(down)))

  // It answers again: the first pass leaves it offline, the second makes it online.
  const up = watch.records.length
  endpoint.behavior = { kind: 'ok' }
  let afterOnePass: { state: string; passes: number } | undefined
  await waitFor(() => {
    const i = h.get('flaky')
    if (i.passes >= 1 && afterOnePass === undefined) afterOnePass = { state: i.state, passes: i.passes }
    return i.passes >= 1
  }, 10_000, 'the first pass after the outage')
  if (afterOnePass?.passes === 1) assert.equal(afterOnePass.state, 'offline', 'one pass is not enough to be online again')
  await waitFor(() => h.get('flaky').state === 'online', 10_000, 'online again')
  assert.ok(h.get('flaky').passes >= 2)
  await waitFor(() => watch.records.slice(up).some((r) => r.state === 'online'), 5000, 'the online record')
  // The record before the first online one is a pass that left it offline, and the one before that a miss.
  const online = watch.records.findIndex((r, i) => i >= up && r.state === 'online')
  const [beforeLast, last] = [watch.records[online - 2], watch.records[online - 1]]
  const trace = JSON.stringify(watch.records.slice(down))
  assert.equal(last?.state, 'offline', trace)
  assert.equal(typeof last?.responseMs, 'number', `a pass: ${trace}`)
  assert.equal(beforeLast?.responseMs, null, `a miss: ${trace}`)
})

test('checks run concurrently: a hanging health endpoint does not delay a fast one', async (t) => {
  const defer = cleanupsFor(t)
  const slowEndpoint = await HealthEndpoint.start()
  defer(() => slowEndpoint.close())
  const fastEndpoint = await HealthEndpoint.start()
  defer(() => fastEndpoint.close())
  slowEndpoint.behavior = { kind: 'delay', ms: 3000 }
  const h = await startHub(defer, {
    health: { interval: '500ms', timeout: '2s', degradedAfter: '1s' },
    instances: [{ id: 'hanging', healthUrl: slowEndpoint.url }, { id: 'quick', healthUrl: fastEndpoint.url }],
  })

  await waitFor(() => h.get('quick').state === 'online' && slowEndpoint.open >= 1, 10_000, 'quick online while hanging is being checked')
  // The first round is still waiting on `hanging`, and `quick` already has its answer.
  assert.equal(h.get('hanging').checks, 0, 'the hanging check has not finished')
  assert.equal(h.get('hanging').state, 'offline')
  assert.equal((await h.view('quick')).state, 'online')

  // Later rounds check `quick` again while the first `hanging` check is still pending; then it times out.
  await waitFor(() => h.get('hanging').checks >= 1, 10_000, 'the hanging check to time out')
  const hanging = await h.view('hanging')
  assert.match(hanging.reason ?? '', /no answer within 2000 ms/)
  assert.equal(hanging.state, 'offline', 'never online, a miss keeps it offline')
  assert.equal(hanging.responseMs.last, null)
  const quick = await h.view('quick')
  assert.equal(quick.state, 'online')
  assert.ok(quick.checks > 1, `quick was checked again while hanging's first check was pending: ${JSON.stringify(quick)}`)
})

test('MQTT ping: an instance without healthUrl that answers pings stays online, with response times', async (t) => {
  const defer = cleanupsFor(t)
  const h = await startHub(defer, {
    health: { interval: '200ms', timeout: '2s', degradedAfter: '5s', missesBeforeOffline: 3 },
  })
  const watch = await watchHealth(h.hub.mqttUrl, h.topics, 'pinged')
  defer(() => watch.stop())
  await h.instance({ id: 'pinged', role: 'analytics', capabilities: ['analyze_data'] })

  await waitFor(() => watch.records.filter((r) => r.responseMs !== null).length >= 4, 10_000, 'four answered pings')
  const checks = watch.records.filter((r) => r.responseMs !== null)
  assert.deepEqual(new Set(states(checks)), new Set(['online']), JSON.stringify(watch.records))
  for (const r of checks) assert.equal(typeof r.responseMs, 'number')
  assert.equal(states(watch.records).includes('timeout'), false)

  const view = await h.view('pinged')
  assert.equal(view.state, 'online')
  assert.equal(view.connected, true)
  assert.ok(view.checks >= 4)
  for (const key of ['last', 'avg', 'p95'] as const) assert.equal(typeof view.responseMs[key], 'number', JSON.stringify(view.responseMs))
  assert.notEqual(view.lastSeenAt, null)
})

test('MQTT ping: an instance that stops answering goes timeout → offline, and its task is re-run by another of its role', async (t) => {
  const defer = cleanupsFor(t)
  const h = await startHub(defer, {
    // w1 never answers, so the timeout only sets how soon it is judged; it is long
    // because w2, which does answer, must not miss three pings on a loaded machine.
    health: { interval: '200ms', timeout: '3s', degradedAfter: '2s', missesBeforeOffline: 3, passesBeforeOnline: 1 },
    // A long lease: the task must come back because of the health check, not the lease.
    tasks: { lease: '10m' },
    instances: [{ id: 'w1', role: 'analytics' }, { id: 'w2', role: 'analytics' }],
  })
  const watch = await watchHealth(h.hub.mqttUrl, h.topics, 'w1')
  defer(() => watch.stop())

  const w1 = await h.instance({ id: 'w1', role: 'analytics', manual: true })
  const events: TaskRecord[] = []
  const eventClient = await mqtt.connectAsync(h.hub.mqttUrl, { reconnectPeriod: 0 })
  defer(() => eventClient.endAsync())
  eventClient.on('message', (_topic, payload) => events.push(JSON.parse(payload.toString()) as TaskRecord))
  await eventClient.subscribeAsync(h.topics.anyTaskEvent, { qos: 1 })

  const submitted = await http<{ id: string; assigned: string[] }>(h.hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: [1, 2, 3] })
  assert.equal(submitted.status, 202, JSON.stringify(submitted.body))
  assert.deepEqual(submitted.body.assigned, ['w1'])
  const id = submitted.body.id
  await w1.waitForTasks(1)
  assert.equal(h.get('w1').inFlight.size, 1, 'w1 holds the task (manual: it never reports)')

  // w2 joins, idle; w1 keeps the task.
  await h.instance({ id: 'w2', role: 'analytics' })
  assert.equal((await http<TaskRecord>(h.hub.httpUrl, 'GET', `/tasks/${id}`)).body.assignments[0]?.instance, 'w1')

  // w1 stops answering pings (and hears nothing else): still connected, silent.
  const down = watch.records.length
  await w1.client.unsubscribeAsync(h.topics.instanceInbox('w1'))

  let first: InstanceView | undefined
  await waitFor(async () => { first = await h.view('w1'); return first.state !== 'online' }, 10_000, 'w1 first miss')
  assert.equal(first?.state, 'timeout', `the first missed ping is a timeout: ${JSON.stringify(first)}`)
  assert.match(first?.reason ?? '', /no heartbeat within 3000 ms/)
  assert.equal(first?.connected, true, 'still connected: no Will, only silence')
  // Read in one synchronous step, so the state and the task belong to the same moment.
  const [stateNow, holderNow] = [h.get('w1').state, h.hub.coordinator.scheduler.get(id)?.assignments[0]?.instance]
  if (stateNow === 'timeout') assert.equal(holderNow, 'w1', 'a timeout does not take the task away')

  await waitFor(() => h.get('w1').state === 'offline', 10_000, 'w1 offline')
  assert.ok(h.get('w1').misses >= 3, `offline after three misses (misses=${h.get('w1').misses})`)
  await waitFor(() => watch.records.slice(down).some((r) => r.state === 'offline'), 5000, 'the offline record')
  assert.deepEqual(states(missesUntilOffline(watch.records, down)), ['timeout', 'timeout', 'offline'], JSON.stringify(watch.records.slice(down)))

  // The task goes back to the queue and w2 runs it.
  let done: TaskRecord | undefined
  await waitFor(async () => {
    done = (await http<TaskRecord>(h.hub.httpUrl, 'GET', `/tasks/${id}`)).body
    return ['completed', 'failed', 'dead', 'cancelled'].includes(done.state)
  }, 10_000, 'the task to finish')
  assert.equal(done?.state, 'completed', JSON.stringify(done))
  assert.deepEqual(done?.result, { by: 'w2' })
  assert.equal(done?.assignments[0]?.instance, 'w2')
  assert.equal(done?.assignments[0]?.attempts, 2)
  assert.deepEqual(done?.assignments[0]?.tried, ['w1'])
  assert.equal(h.get('w1').inFlight.size, 0)

  await waitFor(() => events.some((e) => e.id === id && e.state === 'completed'), 5000, 'the completed event')
  const requeued = events.find((e) => e.id === id && e.state === 'queued' && e.assignments[0]?.tried.includes('w1'))
  assert.ok(requeued !== undefined, `a queued event after w1 was lost: ${JSON.stringify(events.map((e) => e.state))}`)
  assert.match(requeued.assignments[0]?.error ?? '', /w1: health check: offline/)
})

test('hub/stats counts an instance in timeout apart, not as offline (the dashboard shows it yellow)', async (t) => {
  const defer = cleanupsFor(t)
  const endpoint = await HealthEndpoint.start()
  defer(() => endpoint.close())
  const ok = await HealthEndpoint.start()
  defer(() => ok.close())
  const h = await startHub(defer, {
    health: { interval: '200ms', timeout: '150ms', degradedAfter: '1s', missesBeforeOffline: 1000, passesBeforeOnline: 1 },
    instances: [{ id: 'stalled', healthUrl: endpoint.url }, { id: 'fine', healthUrl: ok.url }, { id: 'absent' }],
  })
  await waitFor(() => h.get('stalled').state === 'online' && h.get('fine').state === 'online', 10_000, 'both online')
  endpoint.behavior = { kind: 'hang' }
  await waitFor(() => h.get('stalled').state === 'timeout', 10_000, 'stalled in timeout')
  assert.deepEqual(h.hub.coordinator.stats().instances, { total: 3, online: 1, degraded: 0, timeout: 1, offline: 1 })
  // The retained record says the same.
  const client = await mqtt.connectAsync(h.hub.mqttUrl)
  defer(() => client.endAsync())
  let retained: { instances?: Record<string, number> } = {}
  client.on('message', (_topic, payload) => { retained = JSON.parse(payload.toString()) as typeof retained })
  await client.subscribeAsync(h.topics.hubStats, { qos: 0 })
  await waitFor(() => retained.instances?.['timeout'] === 1, 10_000, `hub/stats with timeout 1: ${JSON.stringify(retained)}`)
  assert.equal(retained.instances?.['offline'], 1, JSON.stringify(retained))
})
