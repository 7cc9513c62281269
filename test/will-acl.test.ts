/**
 * Wills and the ACL (issue #14, finding 5). With auth on, a Will must be on a
 * topic its user may publish to: checked at CONNECT (refused, CONNACK 5) and
 * again when it is published. Wills stored before a kill -9 used to be
 * published at restart with no check at all (a task was injected; c1 was
 * locked offline with session 99999999999999); now each is kept with its
 * owner and published only if the owner may still publish there.
 * And with auth off, where anyone may forge a status: an offline status for
 * a session newer than the instance's last birth is refused on hub/errors
 * instead of locking the instance out.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt from 'mqtt'
import type { HubError } from '../src/contract/payloads/hub.js'
import type { InstanceList } from '../src/contract/http.js'
import { topicsFor } from '../src/contract/topics.js'
import type { BrokerUser } from '../src/config/schema.js'
import { TestInstance } from './helpers/instance.js'
import { http, spawnHub, startTestHub, testConfig, testScope, waitFor, writeConfig, type ConfigObject, type HubProcess } from './helpers/hub.js'
import { captureLog, connackCode, startBroker, tcpUrl } from './broker/helpers.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')
const FORGED_SESSION = 99_999_999_999_999
const root = { username: 'root', password: 'root-secret' }

test('a Will on a topic the user may not publish to is refused at CONNECT; its own status is fine', async (t) => {
  const users: BrokerUser[] = [{ username: 'c1', password: 'c1-secret', role: 'instance' }]
  const { logger, records } = captureLog()
  const broker = await startBroker(t, { auth: { enabled: true, users }, logger })
  const will = (topic: string): mqtt.IClientOptions['will'] => ({ topic, payload: Buffer.from(JSON.stringify({ state: 'offline', session: FORGED_SESSION })), qos: 1, retain: true })
  for (const topic of [topics.instanceStatus('c2'), topics.taskSubmit]) {
    await assert.rejects(
      mqtt.connectAsync(tcpUrl(broker), { username: 'c1', password: 'c1-secret', clientId: `c1-${topic.length}`, will: will(topic), reconnectPeriod: 0, connectTimeout: 10_000 }),
      (error: unknown) => { assert.equal(connackCode(error), 5, topic); return true },
    )
    const line = records.find((r) => r['clientId'] === `c1-${topic.length}`)
    assert.match(String(line?.['msg']), new RegExp(`not authorized: its Will is on ${topic}`))
  }
  const fine = await mqtt.connectAsync(tcpUrl(broker), { username: 'c1', password: 'c1-secret', will: will(topics.instanceStatus('c1')), reconnectPeriod: 0 })
  await fine.endAsync()
})

function users(extra: ConfigObject[]): ConfigObject {
  // The broker's Wills are under test, not the HTTP API (which broker auth would want tokens for).
  return { hub: { allowInsecure: true }, broker: { auth: { enabled: true, users: [{ ...root, role: 'admin' }, { username: 'c1', password: 'c1-secret', role: 'instance' }, ...extra] } } }
}

async function hubProcess(config: ConfigObject, name: string): Promise<HubProcess> {
  const hub = await spawnHub(writeConfig(dir.path, await testConfig(`${dir.path}/wills`, { log: { level: 'warn' }, ...config }), name))
  cleanups.push(() => hub.kill())
  return hub
}

test('after a kill -9, stored Wills are checked against their owners before they are published', async () => {
  // Run 1: m1 and m2 are admins and leave Wills that only an admin may: a task, and a forged offline for c1.
  const first = await hubProcess(users([{ username: 'm1', password: 'm1-secret', role: 'admin' }, { username: 'm2', password: 'm2-secret', role: 'admin' }]), 'first.yaml')
  const c1 = await TestInstance.start({ url: first.mqttUrl, id: 'c1', username: 'c1', password: 'c1-secret', session: 1000 })
  cleanups.push(() => c1.close())
  await waitFor(async () => (await http<InstanceList>(first.httpUrl, 'GET', '/instances')).body.instances.some((i) => i.id === 'c1' && i.state === 'online'), 30_000, 'c1 online')
  const task = JSON.stringify({ id: 'will-task', type: 'general', content: 'injected by a Will' })
  const m1 = await mqtt.connectAsync(first.mqttUrl, { username: 'm1', password: 'm1-secret', clientId: 'm1-session', clean: false, reconnectPeriod: 0, will: { topic: topics.taskSubmit, payload: Buffer.from(task), qos: 1, retain: false } })
  const forged = JSON.stringify({ state: 'offline', session: FORGED_SESSION })
  const m2 = await mqtt.connectAsync(first.mqttUrl, { username: 'm2', password: 'm2-secret', clientId: 'm2-session', clean: false, reconnectPeriod: 0, will: { topic: topics.instanceStatus('c1'), payload: Buffer.from(forged), qos: 1, retain: true } })
  assert.equal(await first.kill('SIGKILL'), null)
  await Promise.all([m1.endAsync(true), m2.endAsync(true), c1.close()])

  // Run 2: m1 is an instance now, m2 is no user at all.
  const second = await hubProcess(users([{ username: 'm1', password: 'm1-secret', role: 'instance' }]), 'second.yaml')
  await waitFor(() => second.output().split('\n').filter((line) => line.includes('broker dropped a stored Will')).length === 2, 30_000, `two stored Wills dropped:\n${second.output()}`)
  const dropped = second.output().split('\n').filter((line) => line.includes('broker dropped a stored Will'))
  assert.ok(dropped.some((line) => line.includes('"username":"m1"') && line.includes(`"topic":"${topics.taskSubmit}"`) && line.includes('may not publish there')), dropped.join('\n'))
  assert.ok(dropped.some((line) => line.includes('"username":"m2"') && line.includes('no longer a user')), dropped.join('\n'))

  // c1's own Will was published: its retained status is its offline, not the forged one.
  const admin = await mqtt.connectAsync(second.mqttUrl, { ...root, reconnectPeriod: 0 })
  cleanups.push(() => admin.endAsync())
  const retained = new Promise<string>((resolve) => admin.on('message', (_topic, payload) => resolve(payload.toString())))
  await admin.subscribeAsync(topics.instanceStatus('c1'), { qos: 1 })
  assert.deepEqual(JSON.parse(await retained), { state: 'offline', session: 1000 })
  assert.equal((await http(second.httpUrl, 'GET', '/tasks/will-task')).status, 404, 'the Will of a user who may no longer submit injected nothing')

  // c1 comes back on a new session and is online, not locked out.
  const again = await TestInstance.start({ url: second.mqttUrl, id: 'c1', username: 'c1', password: 'c1-secret', session: 2000 })
  cleanups.push(() => again.close())
  await waitFor(async () => (await http<InstanceList>(second.httpUrl, 'GET', '/instances')).body.instances.some((i) => i.id === 'c1' && i.state === 'online' && i.session === 2000), 30_000, 'c1 online on session 2000')
  assert.equal((await http(second.httpUrl, 'GET', '/tasks/will-task')).status, 404)
})

test('auth off: an offline status with a session far beyond the last birth is refused and does not lock the instance out', async () => {
  const hub = await startTestHub(await testConfig(`${dir.path}/forged`, { tasks: { lease: '120s' }, health: { interval: '5s', timeout: '5s', missesBeforeOffline: 5 } }))
  cleanups.push(() => hub.stop())
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1' })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 30_000, 'c1 online')
  const bus = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => bus.endAsync())
  const errors: HubError[] = []
  bus.on('message', (topic, payload) => { if (topic === topics.hubErrors) errors.push(JSON.parse(payload.toString()) as HubError) })
  await bus.subscribeAsync(topics.hubErrors, { qos: 1 })
  await bus.publishAsync(topics.instanceStatus('c1'), JSON.stringify({ state: 'offline', session: FORGED_SESSION }), { qos: 1, retain: true })
  await waitFor(() => errors.some((e) => e.code === 'TRINITY_ERR_SESSION_UNKNOWN'), 30_000, 'the forged status refused on hub/errors')
  const refusal = errors.find((e) => e.code === 'TRINITY_ERR_SESSION_UNKNOWN')!
  assert.equal(refusal.topic, topics.instanceStatus('c1'))
  assert.match(refusal.reason, new RegExp(`session: ${FORGED_SESSION} is newer than c1's last birth \\(session ${c1.session}\\)`))
  const instance = hub.coordinator.registry.get('c1')
  assert.deepEqual([instance?.state, instance?.session], ['online', c1.session])
  const submitted = await http(hub.httpUrl, 'POST', '/task', { id: 'after-forgery', type: 'general', content: 'x' })
  assert.equal(submitted.status, 202)
  await waitFor(async () => (await http<{ state: string }>(hub.httpUrl, 'GET', '/tasks/after-forgery')).body.state === 'completed', 60_000, 'a task on c1 completes')
  // Its own Will (same session) still takes it offline.
  c1.dropConnection()
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'offline', 30_000, 'c1 offline by its own Will')
})
