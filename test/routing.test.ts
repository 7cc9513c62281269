/**
 * Routing by capability (issue #10 point 3), warnings for routes that match
 * nobody (point 8), and registry hygiene: forgetting a joined instance by
 * DELETE /instances/:id and by expiry. Each test has its own hub.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import type { Hub } from '../src/hub.js'
import { TestInstance, type TestInstanceOptions } from './helpers/instance.js'
import { http, spawnHub, startTestHub, tempDir, testConfig, waitFor, writeConfig, type ConfigObject } from './helpers/hub.js'
import type { InstanceList, TaskDetail } from '../src/contract/http.js'

type ErrorBody = { error: { code: string; message: string; field?: string } }

function merge(base: ConfigObject, over: ConfigObject): ConfigObject {
  const out: ConfigObject = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const current = out[key]
    const plain = (v: unknown): v is ConfigObject => v !== null && typeof v === 'object' && !Array.isArray(v)
    out[key] = plain(current) && plain(value) ? merge(current, value) : value
  }
  return out
}

async function setup(t: TestContext, overrides: ConfigObject = {}) {
  const dir = tempDir()
  const cleanups: (() => unknown)[] = []
  t.after(async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined)
    dir.remove()
  })
  // No periodic health checks (interval 1h): states come from births and Wills alone, so a
  // loaded machine's late ping cannot make an instance `timeout` in the middle of an assertion.
  const hub: Hub = await startTestHub(await testConfig(dir.path, merge({ health: { interval: '1h' } }, overrides)))
  cleanups.push(() => hub.stop())
  const instance = async (options: Omit<TestInstanceOptions, 'url'>): Promise<TestInstance> => {
    const i = await TestInstance.start({ url: hub.mqttUrl, ...options })
    cleanups.push(() => i.close())
    await waitFor(() => hub.coordinator.registry.get(options.id)?.state === 'online', 10_000, `${options.id} online`)
    return i
  }
  const submit = async (body: unknown): Promise<string> => {
    const response = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', body)
    assert.equal(response.status, 202, JSON.stringify(response.body))
    return response.body.id
  }
  const task = async (id: string): Promise<TaskDetail> => (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${id}`)).body
  const finished = async (id: string): Promise<TaskRecord> => {
    let record: TaskRecord | undefined
    await waitFor(async () => { record = await task(id); return ['completed', 'failed', 'dead', 'cancelled'].includes(record.state) }, 30_000, `task ${id} to finish`)
    return record as TaskRecord
  }
  return { hub, instance, submit, task, finished }
}

test('a type with no route goes to a joined instance that declares it, before tasks.fallback; without one, to the fallback', async (t) => {
  const h = await setup(t, { tasks: { fallback: { targets: ['c1'] } } })
  await h.instance({ id: 'c1' })
  const scribe = await h.instance({ id: 'scribe', capabilities: ['summarize'] })
  const done = await h.finished(await h.submit({ type: 'summarize', content: 'a long text' }))
  assert.equal(done.state, 'completed')
  assert.deepEqual(done.result, { by: 'scribe' })
  assert.deepEqual(done.assignments.map((a) => a.targets), [['summarize']], 'the record names the capability it was routed by')
  assert.deepEqual((await h.finished(await h.submit({ type: 'paint_house', content: 'x' }))).result, { by: 'c1' }, 'other types: the fallback')
  // The capable instance leaves: the type goes to the fallback again.
  scribe.dropConnection()
  await waitFor(() => h.hub.coordinator.registry.get('scribe')?.state === 'offline', 10_000, 'scribe offline')
  assert.deepEqual((await h.finished(await h.submit({ type: 'summarize', content: 'again' }))).result, { by: 'c1' })
})

test('a joined instance that declares a routed type is a candidate (least-loaded, round-robin) and gets its own leg for `all`', async (t) => {
  const h = await setup(t, {
    instances: [{ id: 'listed', capabilities: ['deployment'] }],
    routes: {
      general: { targets: ['c1'], strategy: 'least-loaded' },
      review: { targets: ['c1'], strategy: 'round-robin' },
      deployment: { targets: ['c1'], strategy: 'least-loaded' },
      pattern_analysis: { targets: ['araya', 'c1'], strategy: 'all' },
    },
  })
  // c1 holds what it gets (manual) and takes one at a time: full after one task.
  const c1 = await h.instance({ id: 'c1', manual: true, concurrency: 1 })
  await h.instance({ id: 'helper', capabilities: ['general', 'review', 'pattern_analysis'] })
  await h.instance({ id: 'listed', capabilities: ['deployment'] })
  const release = async (n: number): Promise<void> => {
    const frame = c1.received[n - 1]!
    await c1.report({ taskId: frame.id, leaseToken: frame.leaseToken, state: 'completed', output: 'c1 done' })
    await waitFor(() => h.hub.coordinator.registry.get('c1')?.inFlight.size === 0, 10_000, 'c1 free again')
  }

  // A configured instance is placed by the routes alone: `listed` declares deployment, but only c1 takes it.
  const first = await h.submit({ type: 'deployment', content: 'v1' })
  await c1.waitForTasks(1)
  assert.equal(c1.received[0]?.id, first)
  const second = await h.submit({ type: 'deployment', content: 'v2' })
  const waiting = await h.task(second)
  assert.equal(waiting.state, 'queued')
  assert.equal(waiting.waiting, 'no online instance can take deployment (route: c1; c1 is full (1/1 in flight))')

  // c1 is full: helper, a joined instance that declares the type, is a candidate of c1's routes.
  assert.deepEqual((await h.finished(await h.submit({ type: 'general', content: 1 }))).result, { by: 'helper' }, 'least-loaded')
  assert.deepEqual((await h.finished(await h.submit({ type: 'review', content: 1 }))).result, { by: 'helper' }, 'round-robin')
  await release(1)
  await c1.waitForTasks(2)
  assert.equal(c1.received[1]?.id, second, 'the waiting deployment goes to c1 once it is free')
  await release(2)

  // `all`: one leg per route target, plus one for each capable joined instance online at submission.
  const fanned = await h.submit({ type: 'pattern_analysis', content: 'red fish' })
  assert.deepEqual((await h.task(fanned)).assignments.map((a) => a.targets), [['araya'], ['c1'], ['helper']])
  await waitFor(async () => (await h.task(fanned)).assignments[2]?.state === 'completed', 10_000, 'helper\'s leg done')
  await h.instance({ id: 'late', capabilities: ['pattern_analysis'] })
  assert.equal((await h.task(fanned)).assignments.length, 3, 'a task submitted before it joined gets no leg for it')
  const later = await h.submit({ type: 'pattern_analysis', content: 'blue fish' })
  assert.deepEqual((await h.task(later)).assignments.map((a) => a.targets), [['araya'], ['c1'], ['helper'], ['late']])
  const laterDone = await waitForLeg(h.task, later, 3)
  assert.deepEqual(laterDone.output, { by: 'late' })
  for (const id of [fanned, later]) await http(h.hub.httpUrl, 'POST', `/tasks/${id}/cancel`)
})

async function waitForLeg(task: (id: string) => Promise<TaskRecord>, id: string, leg: number): Promise<TaskRecord['assignments'][number]> {
  let record: TaskRecord | undefined
  await waitFor(async () => { record = await task(id); return record.assignments[leg]?.state === 'completed' }, 10_000, `leg ${leg} of ${id}`)
  return record?.assignments[leg] as TaskRecord['assignments'][number]
}

test('routes whose targets match no configured instance are warned about at start, once per route; an empty config says so', async (t) => {
  const dir = tempDir()
  t.after(() => dir.remove())
  const config = await testConfig(dir.path, {
    log: { level: 'info' },
    instances: [{ id: 'worker', capabilities: ['summarize'] }, { id: 'w2', role: 'writers' }],
    routes: {
      a_job: { targets: ['ghost'] },
      b_job: { targets: ['ghost', 'phantom', 'worker'], strategy: 'all' },
      by_id: { targets: ['worker'] },
      by_role: { targets: ['writers'] },
      by_capability: { targets: ['summarize'] },
    },
    tasks: { fallback: { targets: ['nobody'] } },
  })
  const hub = await spawnHub(writeConfig(dir.path, config, 'warn.yaml'))
  t.after(() => hub.kill())
  const warnings = (): { route?: string; targets?: string[]; msg: string }[] =>
    hub.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; route?: string; targets?: string[]; msg: string }).filter((l) => l.level === 40)
  const routeWarnings = warnings().filter((w) => w.route !== undefined)
  assert.deepEqual(routeWarnings.map((w) => [w.route, w.targets]).sort(), [['a_job', ['ghost']], ['b_job', ['ghost', 'phantom']], ['tasks.fallback', ['nobody']]])
  assert.equal(routeWarnings.find((w) => w.route === 'b_job')?.msg, 'route b_job: target "ghost", "phantom" matches no configured instance (id, role or capability); its tasks wait until one joins')
  assert.ok(!warnings().some((w) => /no instances configured/.test(w.msg)))

  // No `instances` key: none configured, while the seed's eight routes still apply.
  const emptyDir = tempDir()
  t.after(() => emptyDir.remove())
  const empty = await spawnHub(writeConfig(emptyDir.path, await testConfig(emptyDir.path, { log: { level: 'info' } }), 'empty.yaml'))
  t.after(() => empty.kill())
  const lines = empty.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; route?: string; msg: string })
  assert.ok(lines.some((l) => l.level === 40 && l.msg === 'no instances configured: tasks wait for instances that join by birth'), empty.output())
  assert.deepEqual(lines.filter((l) => l.level === 40 && l.route !== undefined).map((l) => l.route).sort(),
    ['analyze_data', 'bug_fix', 'build_project', 'deployment', 'general', 'monitor_system', 'pattern_analysis', 'track_user'])
})

test('DELETE /instances/:id forgets a joined instance and clears its retained status; refused for configured ones and while it holds tasks', async (t) => {
  const h = await setup(t, { instances: [{ id: 'listed' }] })
  const worker = await h.instance({ id: 'worker', role: 'c1', manual: true })
  const id = await h.submit({ type: 'general', content: 'held' })
  await worker.waitForTasks(1)

  const unknown = await http<ErrorBody>(h.hub.httpUrl, 'DELETE', '/instances/nobody')
  assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'TRINITY_ERR_INSTANCE_NOT_FOUND'])
  const configured = await http<ErrorBody>(h.hub.httpUrl, 'DELETE', '/instances/listed')
  assert.deepEqual([configured.status, configured.body.error.code], [409, 'TRINITY_ERR_INSTANCE_CONFIGURED'])
  const busy = await http<ErrorBody>(h.hub.httpUrl, 'DELETE', '/instances/worker')
  assert.deepEqual([busy.status, busy.body.error.code], [409, 'TRINITY_ERR_INSTANCE_BUSY'])
  assert.match(busy.body.error.message, /worker holds 1 task leg/)

  await worker.report({ taskId: id, leaseToken: worker.received[0]!.leaseToken, state: 'completed', output: 'ok' })
  await h.finished(id)
  // Its Will first (retained), so the clearing below comes after it.
  worker.dropConnection()
  await waitFor(() => h.hub.coordinator.registry.get('worker')?.state === 'offline', 10_000, 'worker offline')
  const forgotten = await http<{ id: string; forgotten: boolean }>(h.hub.httpUrl, 'DELETE', '/instances/worker')
  assert.deepEqual([forgotten.status, forgotten.body], [200, { id: 'worker', forgotten: true }])
  const listed = await http<InstanceList>(h.hub.httpUrl, 'GET', '/instances')
  assert.deepEqual(listed.body.instances.map((i) => i.id), ['listed'])

  // The retained birth is gone from the broker: a retained copy would arrive before the marker does.
  const watcher = await mqtt.connectAsync(h.hub.mqttUrl)
  t.after(() => watcher.endAsync())
  const statusTopic = h.hub.coordinator.topics.instanceStatus('worker')
  const marker = h.hub.coordinator.topics.instanceStatus('marker-for-routing-test')
  const seen: string[] = []
  watcher.on('message', (topic) => seen.push(topic))
  await watcher.subscribeAsync([statusTopic, marker], { qos: 1 })
  await watcher.publishAsync(marker, '', { qos: 1 })
  await waitFor(() => seen.includes(marker), 10_000, 'the marker')
  assert.deepEqual(seen, [marker], 'no retained status left for worker')
})

test('joined instances offline and silent longer than health.forgetAfter leave the registry; configured ones stay', async (t) => {
  const h = await setup(t, { health: { forgetAfter: '1s' }, instances: [{ id: 'listed' }] })
  const passing = await h.instance({ id: 'passing' })
  const staying = await h.instance({ id: 'staying' })
  passing.dropConnection()
  await waitFor(() => h.hub.coordinator.registry.get('passing') === undefined, 30_000, 'passing forgotten')
  assert.equal(h.hub.coordinator.registry.get('listed')?.state, 'offline', 'a configured instance is never forgotten')
  assert.equal(h.hub.coordinator.registry.get('staying')?.state, 'online', 'an online one stays')
  await staying.close()
})
