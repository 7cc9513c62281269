/**
 * Client ids bound to users outlive a restart (issue #14): the bindings of ids
 * outside `trinity-` were kept in memory only, so after a hub restart the
 * first user to connect could take an id another user's persistent session
 * held, and with it that session's queued messages. They are in the broker's
 * journal now: after a clean stop and after a kill -9, user B is still refused
 * the id user A held (CONNACK 5) while A reconnects with it and resumes its
 * session. The table is bounded: a clean session leaves no binding behind, and
 * a binding goes with its session's age (`limits.sessionMaxAge`).
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { BrokerUser } from '../../src/config/schema.js'
import { spawnHub, testConfig, testScope, writeConfig, type HubProcess } from '../helpers/hub.js'
import { connackCode, startBroker, tcpUrl, tempDir, topics } from './helpers.js'

const { dir, cleanups } = testScope()
const ana: BrokerUser = { username: 'ana', password: 'ana-secret', role: 'instance' }
const ben: BrokerUser = { username: 'ben', password: 'ben-secret', role: 'instance' }
const root: BrokerUser = { username: 'root', password: 'root-secret', role: 'admin' }
const HELD = 'ana-laptop'

const login = (user: BrokerUser): IClientOptions => ({ username: user.username, password: user.password, reconnectPeriod: 0, connectTimeout: 10_000 })

/** The CONNACK code of a CONNECT as `user` with `clientId` (0: accepted, then closed). */
async function tryConnect(url: string, user: BrokerUser, clientId: string, clean = true): Promise<number | undefined> {
  try {
    const client = await mqtt.connectAsync(url, { ...login(user), clientId, clean })
    await client.endAsync()
    return 0
  } catch (error) {
    return connackCode(error)
  }
}

/** Connects as ana with the held id, persistent session; resolves with the client and whether the broker had its session. */
async function anaConnects(url: string, received: string[]): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const client = mqtt.connect(url, { ...login(ana), clientId: HELD, clean: false })
  client.on('message', (_topic, payload) => received.push(payload.toString()))
  client.on('error', () => undefined) // a broker killed under it: the test's asserts say what matters
  const sessionPresent = await new Promise<boolean>((resolve, reject) => {
    client.once('connect', (connack) => resolve(connack.sessionPresent))
    client.once('error', reject)
  })
  cleanups.push(() => client.endAsync(true))
  return { client, sessionPresent }
}

async function hub(file: string): Promise<HubProcess> {
  const started = await spawnHub(file)
  cleanups.push(() => started.kill())
  return started
}

test('after a restart (a clean stop, then kill -9) another user is still refused the id a user held, and the holder resumes its session', async () => {
  const config = await testConfig(`${dir.path}/ids`, {
    hub: { allowInsecure: true },
    broker: { persistence: 'disk', auth: { enabled: true, users: [root, ana, ben] } },
  })
  const file = writeConfig(dir.path, config, 'ids.yaml')
  const inbox = topics.instanceInbox('ana')
  const received: string[] = []

  const first = await hub(file)
  const a = await anaConnects(first.mqttUrl, received)
  await a.client.subscribeAsync(inbox, { qos: 1 })
  // A clean session's id binds only while connected: nothing of it is kept.
  assert.equal(await tryConnect(first.mqttUrl, ben, 'ben-scratch'), 0)
  assert.equal(await first.kill('SIGTERM'), 0)

  for (const [run, stop] of [['after a clean stop', 'SIGKILL'], ['after kill -9', null]] as const) {
    const next = await hub(file)
    assert.equal(await tryConnect(next.mqttUrl, ben, HELD), 5, `${run}: ben may not take ana's id`)
    assert.equal(await tryConnect(next.mqttUrl, ben, HELD, false), 5, `${run}: nor as a persistent session`)
    assert.equal(await tryConnect(next.mqttUrl, ana, 'ben-scratch'), 0, `${run}: a clean session left no binding`)
    // Queued for ana's absent session, delivered when she resumes it.
    const admin = await mqtt.connectAsync(next.mqttUrl, { ...login(root) })
    await admin.publishAsync(inbox, `queued ${run}`, { qos: 1 })
    await admin.endAsync()
    const resumed = await anaConnects(next.mqttUrl, received)
    assert.equal(resumed.sessionPresent, true, `${run}: ana's session is hers`)
    await waitForMessage(received, `queued ${run}`)
    if (stop !== null) assert.equal(await next.kill(stop), null)
  }
})

async function waitForMessage(received: string[], text: string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (!received.includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" within 60 s: ${JSON.stringify(received)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test("a binding goes with its session: past limits.sessionMaxAge away, or once a clean CONNECT removed the session, the id is free", async (t: TestContext) => {
  const dataDir = await tempDir(t)
  const auth = { enabled: true, users: [ana, ben] }
  const options = { persistence: 'disk' as const, dataDir, auth, session: { maxMessages: 100, maxAgeMs: 60 * 60_000 } }
  const broker = await startBroker(t, options)
  const held = await mqtt.connectAsync(tcpUrl(broker), { ...login(ana), clientId: HELD, clean: false })
  await held.endAsync()
  await broker.close()
  // An hour's bound: still ana's after a restart.
  const again = await startBroker(t, options)
  assert.equal(await tryConnect(tcpUrl(again), ben, HELD), 5)
  await again.close()
  // A bound shorter than her absence: the binding expired with the session's age.
  await new Promise((resolve) => setTimeout(resolve, 50))
  const expired = await startBroker(t, { ...options, session: { maxMessages: 100, maxAgeMs: 10 } })
  assert.equal(await tryConnect(tcpUrl(expired), ben, HELD), 0)
  await expired.close()
  // And with the session's removal: a clean CONNECT by its owner ends it [MQTT-3.1.2-6], and the binding with it.
  const removed = await startBroker(t, options)
  assert.equal(await tryConnect(tcpUrl(removed), ana, 'ana-phone', false), 0)
  assert.equal(await tryConnect(tcpUrl(removed), ana, 'ana-phone', true), 0)
  await removed.close()
  const last = await startBroker(t, options)
  assert.equal(await tryConnect(tcpUrl(last), ben, 'ana-phone'), 0, 'no binding outlives the session it guarded')
})
