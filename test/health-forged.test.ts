/**
 * Forged statuses against a live instance, auth off, where anyone may publish
 * an instance's status (issue #14, what finding 5 left open):
 *  - an `error` or `draining` status with a huge session used to open a new
 *    session: the instance left routing, and its real statuses were stale from
 *    then on. Only a birth opens a session now; the forgery is refused on
 *    hub/errors and the instance keeps working;
 *  - a forged retained offline status seen by a restarted hub, before any birth:
 *    a joined instance was unknown to it (the forgery had replaced its retained
 *    birth, and heartbeats of an unknown id were ignored) until the instance's
 *    next birth, which an instance that never reconnects never sends. The hub
 *    remembers each instance's last birth now, so the forgery is refused as it
 *    is while the hub runs, and the instance's heartbeats bring it back.
 * The restart runs against an external Mosquitto, so that the instance stays
 * connected while the hub is killed (an embedded broker's restart would make it
 * reconnect, and a reconnecting instance births again): the instance here is a
 * bare MQTT client that heartbeats and answers pings, and never births twice.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt from 'mqtt'
import type { HubError } from '../src/contract/payloads/hub.js'
import type { InstanceList } from '../src/contract/http.js'
import { topicsFor } from '../src/contract/topics.js'
import { TestInstance } from './helpers/instance.js'
import { http, spawnHub, startMosquitto, startTestHub, testConfig, testScope, waitFor, writeConfig } from './helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')
const FORGED_SESSION = 99_999_999_999_999

async function hubErrors(url: string): Promise<HubError[]> {
  const bus = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
  cleanups.push(() => bus.endAsync())
  const errors: HubError[] = []
  bus.on('message', (topic, payload) => { if (topic === topics.hubErrors) errors.push(JSON.parse(payload.toString()) as HubError) })
  await bus.subscribeAsync(topics.hubErrors, { qos: 1 })
  return errors
}

async function completes(httpUrl: string, id: string): Promise<void> {
  const submitted = await http(httpUrl, 'POST', '/task', { id, type: 'general', content: 'x' })
  assert.equal(submitted.status, 202)
  await waitFor(async () => (await http<{ state: string }>(httpUrl, 'GET', `/tasks/${id}`)).body.state === 'completed', 60_000, `task ${id} completes`)
  const task = await http<{ assignments: { output?: unknown }[] }>(httpUrl, 'GET', `/tasks/${id}`)
  assert.deepEqual(task.body.assignments.map((leg) => leg.output), [{ by: 'c1' }])
}

test('auth off: a forged error and a forged draining status with a huge session are refused; the live instance stays routable', async () => {
  const hub = await startTestHub(await testConfig(`${dir.path}/forged`, { tasks: { lease: '120s' }, health: { interval: '1s', timeout: '5s', missesBeforeOffline: 5 } }))
  cleanups.push(() => hub.stop())
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', heartbeatMs: 500 })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 30_000, 'c1 online')
  const errors = await hubErrors(hub.mqttUrl)
  const forger = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => forger.endAsync())
  for (const state of ['error', 'draining'] as const) {
    await forger.publishAsync(topics.instanceStatus('c1'), JSON.stringify({ state, session: FORGED_SESSION, error: 'forged' }), { qos: 1, retain: true })
  }
  const refusals = (): HubError[] => errors.filter((e) => e.code === 'TRINITY_ERR_SESSION_UNKNOWN' && e.topic === topics.instanceStatus('c1'))
  await waitFor(() => refusals().length === 2, 30_000, () => `both forgeries refused on hub/errors: ${JSON.stringify(errors)}`)
  for (const [i, state] of ['error', 'draining'].entries()) {
    assert.match(refusals()[i]?.reason ?? '', new RegExp(`session: ${FORGED_SESSION} is newer than c1's last birth \\(session ${c1.session}\\); only a birth \\(online\\) starts a session, a ${state} status`))
  }
  const instance = hub.coordinator.registry.get('c1')
  assert.deepEqual([instance?.state, instance?.draining, instance?.session, instance?.available], ['online', false, c1.session, true])
  await completes(hub.httpUrl, 'after-forged-error')
  // The instance's own statuses still count: its Will takes it offline.
  c1.dropConnection()
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'offline', 30_000, 'c1 offline by its own Will')
})

test('a forged retained offline status seen by a hub restarted after kill -9: the live instance is online again by its heartbeats and runs a task, without a new birth', async () => {
  const mosquitto = await startMosquitto(dir.path)
  cleanups.push(() => mosquitto.stop())
  const config = await testConfig(`${dir.path}/restart`, {
    broker: { mode: 'external', url: mosquitto.url },
    tasks: { lease: '120s' },
    health: { interval: '1s', timeout: '5s', missesBeforeOffline: 5 },
  })
  const file = writeConfig(dir.path, config, 'restart.yaml')
  const first = await spawnHub(file)
  cleanups.push(() => first.kill())
  // A joined instance (not in the config), on Mosquitto: it stays connected while the hub is down.
  const c1 = await TestInstance.start({ url: mosquitto.url, id: 'c1', heartbeatMs: 500 })
  cleanups.push(() => c1.close())
  let connections = 0
  c1.client.on('connect', () => connections++)
  const online = async (url: string): Promise<boolean> => (await http<InstanceList>(url, 'GET', '/instances')).body.instances.some((i) => i.id === 'c1' && i.state === 'online' && i.session === c1.session)
  await waitFor(() => online(first.httpUrl), 30_000, 'c1 online before the restart')
  await completes(first.httpUrl, 'before-restart')
  assert.equal(await first.kill('SIGKILL'), null)

  // While no hub runs: a forged offline with a huge session replaces c1's retained birth.
  const errors = await hubErrors(mosquitto.url)
  const forger = await mqtt.connectAsync(mosquitto.url, { reconnectPeriod: 0 })
  cleanups.push(() => forger.endAsync())
  await forger.publishAsync(topics.instanceStatus('c1'), JSON.stringify({ state: 'offline', session: FORGED_SESSION }), { qos: 1, retain: true })

  const second = await spawnHub(file)
  cleanups.push(() => second.kill())
  await waitFor(() => online(second.httpUrl), 60_000, 'c1 online again by its heartbeats')
  // The restarted hub remembers c1's birth: the forgery is refused as it would be while the hub runs.
  await waitFor(() => errors.some((e) => e.code === 'TRINITY_ERR_SESSION_UNKNOWN' && e.topic === topics.instanceStatus('c1')), 30_000, () => `the forged status refused by the restarted hub: ${JSON.stringify(errors)}`)
  await completes(second.httpUrl, 'after-restart')
  assert.deepEqual([c1.client.connected, connections], [true, 0], 'the instance never reconnected (nor published a new birth)')
})
