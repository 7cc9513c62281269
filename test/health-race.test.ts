/**
 * A ping answered after the instance said offline must not bring it back: the
 * answer belongs to a connection the status has already ended. (Seen with a
 * draining agent whose late heartbeat showed it online for good; any client
 * that answers one last ping on its way out does the same.)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { InboxFrame } from '../src/contract/payloads/inbox.js'
import { topicsFor } from '../src/contract/topics.js'
import type { InstanceList, InstanceView } from '../src/contract/http.js'
import { http, startTestHub, testConfig, testScope, waitFor } from './helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor()

test('a heartbeat that arrives after the offline status does not turn the instance online again', async () => {
  // Pings every 300 ms; one answered pass is enough to count as online.
  const hub = await startTestHub(await testConfig(dir.path, { health: { interval: '300ms', timeout: '5s', passesBeforeOnline: 1 } }))
  cleanups.push(() => hub.stop())
  const client = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'leaver', clean: false })
  cleanups.push(() => client.endAsync())
  const session = Date.now()
  const status = topics.instanceStatus('leaver')
  let leaving = false
  client.on('message', (_t, payload) => {
    const frame = JSON.parse(payload.toString()) as InboxFrame
    if (frame.kind !== 'ping') return
    const answer = JSON.stringify({ ts: Date.now(), nonce: frame.nonce })
    if (!leaving) return void client.publish(topics.instanceHeartbeat('leaver'), answer)
    // On its way out: says offline first, then answers the ping it already had.
    leaving = false
    client.publish(status, JSON.stringify({ state: 'offline', session }), { qos: 1, retain: true }, () => {
      client.publish(topics.instanceHeartbeat('leaver'), answer)
      // A marker behind it on the same connection: once the hub has it, it has seen the heartbeat.
      client.publish(topics.taskSubmit, JSON.stringify({ id: 'marker', type: 'general', content: 'after the heartbeat' }), { qos: 1 })
    })
  })
  await client.subscribeAsync(topics.instanceInbox('leaver'), { qos: 1 })
  await client.publishAsync(status, JSON.stringify({ state: 'online', session, capabilities: ['general'] }), { qos: 1, retain: true })
  const view = async (): Promise<InstanceView | undefined> => (await http<InstanceList>(hub.httpUrl, 'GET', '/instances')).body.instances.find((i) => i.id === 'leaver')
  await waitFor(async () => ((await view())?.checks ?? 0) >= 2, 60_000, 'leaver online and checked twice')
  leaving = true
  await waitFor(async () => (await http(hub.httpUrl, 'GET', '/tasks/marker')).status === 200, 60_000, 'the hub past the late heartbeat')
  const after = await view()
  assert.equal(after?.connected, false)
  assert.equal(after?.state, 'offline', `state after the late heartbeat: ${after?.state} (${after?.reason})`)
})

test('a late Will for a live connection does not outrank it: the instance still heartbeats, answers the hub\'s ping and is online again', async () => {
  const hub = await startTestHub(await testConfig(`${dir.path}/late-will`, { health: { interval: '30s', timeout: '5s', passesBeforeOnline: 1 } }))
  cleanups.push(() => hub.stop())
  const client = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'survivor', clean: false })
  cleanups.push(() => client.endAsync())
  const session = Date.now()
  client.on('message', (_t, payload) => {
    const frame = JSON.parse(payload.toString()) as InboxFrame
    if (frame.kind === 'ping') client.publish(topics.instanceHeartbeat('survivor'), JSON.stringify({ ts: Date.now(), nonce: frame.nonce }))
  })
  await client.subscribeAsync(topics.instanceInbox('survivor'), { qos: 1 })
  await client.publishAsync(topics.instanceStatus('survivor'), JSON.stringify({ state: 'online', session, capabilities: ['general'] }), { qos: 1, retain: true })
  const view = async (): Promise<InstanceView | undefined> => (await http<{ instances: InstanceView[] }>(hub.httpUrl, 'GET', '/instances')).body.instances.find((i) => i.id === 'survivor')
  await waitFor(async () => (await view())?.state === 'online', 60_000, 'survivor online')
  // The Will of a connection that died in a hub crash, published after the live one's birth, same session.
  const other = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'late-will' })
  cleanups.push(() => other.endAsync())
  await other.publishAsync(topics.instanceStatus('survivor'), JSON.stringify({ state: 'offline', session }), { qos: 1, retain: true })
  await waitFor(async () => (await view())?.connected === false, 60_000, 'the late Will applied')
  // Its periodic heartbeat (no nonce) makes the hub ask; the answer proves the connection.
  const beat = setInterval(() => client.publish(topics.instanceHeartbeat('survivor'), JSON.stringify({ ts: Date.now() })), 200)
  try {
    await waitFor(async () => { const v = await view(); return v?.connected === true && v.state === 'online' }, 60_000, 'survivor online again')
  } finally {
    clearInterval(beat)
  }
})
