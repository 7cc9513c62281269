/**
 * Authentication and ACLs: credentials are checked, each role publishes only
 * where it may, a denied publish is dropped without hurting anyone, and with
 * auth disabled anonymous clients may do anything.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import mqtt from 'mqtt'
import type { EmbeddedBroker } from '../../broker/embedded.js'
import type { BrokerUser } from '../../src/config/schema.js'
import { connect, nextMessage, record, startBroker, tcpUrl, topics } from './helpers.js'

const users: BrokerUser[] = [
  { username: 'root', password: 'root-secret', role: 'admin' },
  { username: 'araya', password: 'araya-secret', role: 'instance' },
  { username: 'bob', password: 'bob-secret', role: 'instance' },
  { username: 'submitter', password: 'submitter-secret', role: 'client' },
]
const hubAdmin: BrokerUser = { username: 'hub-internal', password: 'generated-7f3a', role: 'admin' }

async function securedBroker(t: TestContext): Promise<EmbeddedBroker> {
  return startBroker(t, { auth: { enabled: true, users }, internalUsers: [hubAdmin] })
}

function login(username: string): { username: string; password: string } {
  const user = [...users, hubAdmin].find((u) => u.username === username)
  assert.ok(user)
  return { username: user.username, password: user.password }
}

/** An admin watching everything, to see what gets delivered. */
async function observer(t: TestContext, broker: EmbeddedBroker): ReturnType<typeof connect> {
  const client = await connect(t, tcpUrl(broker), login('root'))
  await client.subscribeAsync('#', { qos: 1 })
  return client
}

test('wrong password, unknown user and missing credentials are refused', async (t) => {
  const broker = await securedBroker(t)
  for (const options of [
    { username: 'araya', password: 'wrong' },
    { username: 'nobody', password: 'araya-secret' },
    {},
  ]) {
    await assert.rejects(mqtt.connectAsync(tcpUrl(broker), { ...options, reconnectPeriod: 0 }), (error: Error & { code?: number }) => {
      assert.equal(error.code, 4, `expected CONNACK 4 (bad username or password), got ${error.message}`)
      return true
    })
  }
  assert.equal(broker.connectedClients, 0)
})

test('an internal user is accepted although it is not in config', async (t) => {
  const broker = await securedBroker(t)
  const hub = await connect(t, tcpUrl(broker), login('hub-internal'))
  assert.equal(hub.connected, true)
})

test('an instance publishes in its own namespaces, and nowhere else', async (t) => {
  const broker = await securedBroker(t)
  const watcher = await observer(t, broker)
  const seen = record(watcher)
  const araya = await connect(t, tcpUrl(broker), login('araya'))

  const report = nextMessage(watcher, (topic) => topic === topics.instanceReport('araya'))
  await araya.publishAsync(topics.instanceReport('araya'), 'own report', { qos: 1 })
  assert.equal((await report).payload, 'own report')

  const message = nextMessage(watcher, (topic) => topic === topics.message('araya', 'bob'))
  await araya.publishAsync(topics.message('araya', 'bob'), 'hello bob', { qos: 1 })
  assert.equal((await message).payload, 'hello bob')

  // Denied: another instance's namespace, a message in someone else's name, task submission.
  await araya.publishAsync(topics.instanceReport('bob'), 'forged report', { qos: 1 })
  await araya.publishAsync(topics.message('bob', 'araya'), 'forged message', { qos: 1 })
  await araya.publishAsync(topics.taskSubmit, 'not a client', { qos: 1 })
  await araya.publishAsync(topics.instanceStatus('bob'), 'forged status', { qos: 0, retain: true })
  // A later allowed publish from the same connection marks the end of the denied ones.
  const marker = nextMessage(watcher, (topic) => topic === topics.instanceHeartbeat('araya'))
  await araya.publishAsync(topics.instanceHeartbeat('araya'), 'marker', { qos: 1 })
  await marker

  assert.deepEqual(seen.map((m) => m.payload), ['own report', 'hello bob', 'marker'])
  assert.equal(araya.connected, true, 'a denied publish is acknowledged and dropped, not a disconnect')

  // The denied retained publish left nothing behind for a later subscriber.
  const late = await connect(t, tcpUrl(broker), login('bob'))
  const lateSeen = record(late)
  await late.subscribeAsync(topics.instanceStatus('bob'), { qos: 1 })
  const lateMarker = nextMessage(late, (topic) => topic === topics.instanceStatus('bob'))
  await late.publishAsync(topics.instanceStatus('bob'), 'real status', { qos: 1 })
  await lateMarker
  assert.deepEqual(lateSeen.map((m) => m.payload), ['real status'])
})

test('a client may submit tasks as well as use its own namespaces', async (t) => {
  const broker = await securedBroker(t)
  const watcher = await observer(t, broker)
  const submitter = await connect(t, tcpUrl(broker), login('submitter'))
  const submitted = nextMessage(watcher, (topic) => topic === topics.taskSubmit)
  await submitter.publishAsync(topics.taskSubmit, '{"type":"analyze_data","content":1}', { qos: 1 })
  assert.equal((await submitted).payload, '{"type":"analyze_data","content":1}')
  const own = nextMessage(watcher, (topic) => topic === topics.message('submitter', 'all'))
  await submitter.publishAsync(topics.message('submitter', 'all'), 'hi all', { qos: 1 })
  assert.equal((await own).payload, 'hi all')
})

test('an admin may publish and subscribe anywhere', async (t) => {
  const broker = await securedBroker(t)
  const watcher = await observer(t, broker)
  const admin = await connect(t, tcpUrl(broker), login('hub-internal'))
  for (const topic of [topics.instanceInbox('araya'), topics.hubStats, 'outside/the/prefix']) {
    const delivered = nextMessage(watcher, (received) => received === topic)
    await admin.publishAsync(topic, `to ${topic}`, { qos: 1 })
    assert.equal((await delivered).payload, `to ${topic}`)
  }
})

test('a client-role user may subscribe under the prefix only', async (t) => {
  const broker = await securedBroker(t)
  const submitter = await connect(t, tcpUrl(broker), login('submitter'))
  for (const filter of [topics.all, topics.instanceInbox('bob')]) {
    const granted = await submitter.subscribeAsync(filter, { qos: 1 })
    assert.deepEqual(granted.map((g) => g.qos), [1])
  }
  for (const filter of ['#', 'outside/+', '$SYS/#']) {
    // SUBACK return code 0x80: MQTT.js rejects with the SUBACK attached.
    await assert.rejects(submitter.subscribeAsync(filter, { qos: 1 }), (error: Error & { packet?: { granted?: unknown } }) => {
      assert.deepEqual(error.packet?.granted, [128])
      return true
    })
  }
  assert.equal(submitter.connected, true)
})

test('an instance subscribes only to its own topics, its health and messages to it or to all (issue #14)', async (t) => {
  const broker = await securedBroker(t)
  const araya = await connect(t, tcpUrl(broker), login('araya'))
  const allowed = [
    topics.instanceInbox('araya'), topics.instanceStatus('araya'), topics.instanceNamespace('araya'), topics.health('araya'),
    topics.message('bob', 'araya'), topics.messagesTo('araya'), topics.messagesTo('all'),
  ]
  for (const filter of allowed) {
    const granted = await araya.subscribeAsync(filter, { qos: 1 })
    assert.deepEqual(granted.map((g) => g.qos), [1], filter)
  }
  // Other instances' inboxes carry their task contents and lease tokens.
  const refused = [
    topics.all, topics.instanceInbox('bob'), 'trinity/instance/+/inbox', 'trinity/instance/#', topics.anyMessage, 'trinity/message/araya/+',
    topics.anyTaskEvent, topics.taskSubmit, topics.health('bob'), '#', 'outside/+', '$SYS/#',
  ]
  for (const filter of refused) {
    await assert.rejects(araya.subscribeAsync(filter, { qos: 1 }), (error: Error & { packet?: { granted?: unknown } }) => {
      assert.deepEqual(error.packet?.granted, [128], filter)
      return true
    })
  }
  assert.equal(araya.connected, true)
  // What araya may read reaches it; what it was refused does not (the marker on its own inbox comes after).
  const seen = record(araya)
  const admin = await connect(t, tcpUrl(broker), login('hub-internal'))
  await admin.publishAsync(topics.instanceInbox('bob'), 'for bob', { qos: 1 })
  await admin.publishAsync(topics.message('bob', 'all'), 'to all', { qos: 1 })
  const marker = nextMessage(araya, (topic) => topic === topics.instanceInbox('araya'))
  await admin.publishAsync(topics.instanceInbox('araya'), 'for araya', { qos: 1 })
  await marker
  assert.deepEqual([...new Set(seen.map((m) => m.payload))], ['to all', 'for araya'], 'overlapping filters may deliver twice; bob\'s inbox never')
})

test('with auth disabled, anonymous clients may do anything', async (t) => {
  const broker = await startBroker(t)
  const anonymous = await connect(t, tcpUrl(broker))
  await anonymous.subscribeAsync('#', { qos: 1 })
  for (const topic of [topics.instanceReport('bob'), topics.taskSubmit, 'outside/the/prefix']) {
    const delivered = nextMessage(anonymous, (received) => received === topic)
    await anonymous.publishAsync(topic, 'anything', { qos: 1 })
    assert.equal((await delivered).payload, 'anything')
  }
})
