/**
 * Client ids bound to users, broker auth on (issue #14, finding 4): a CONNECT
 * that reuses a connected client's id takes its session over and kicks it
 * [MQTT-3.1.4-2], so an instance user reconnecting as the coordinator kicked
 * it again and again. Now such a CONNECT is refused with CONNACK 5 and a log
 * line naming user and client id, and the holder keeps its connection.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import mqtt from 'mqtt'
import type { EmbeddedBroker } from '../../broker/embedded.js'
import type { BrokerUser } from '../../src/config/schema.js'
import { clientIds } from '../../src/net/client-ids.js'
import { captureLog, connackCode, connect, startBroker, tcpUrl } from './helpers.js'

const users: BrokerUser[] = [
  { username: 'araya', password: 'araya-secret', role: 'instance' },
  { username: 'bob', password: 'bob-secret', role: 'instance' },
  { username: 'ops', password: 'ops-secret', role: 'client' },
]
const hubAdmin: BrokerUser = { username: 'hub-internal', password: 'generated-7f3a', role: 'admin' }

async function secured(t: TestContext): Promise<{ broker: EmbeddedBroker; records: Record<string, unknown>[] }> {
  const { logger, records } = captureLog()
  const broker = await startBroker(t, { auth: { enabled: true, users }, internalUsers: [hubAdmin], logger })
  return { broker, records }
}

function login(user: BrokerUser): { username: string; password: string } {
  return { username: user.username, password: user.password }
}

const [araya, bob, ops] = users as [BrokerUser, BrokerUser, BrokerUser]

/** Connects as `user` with `clientId`: the CONNACK code, 0 when accepted (the client is then closed). */
async function tryConnect(broker: EmbeddedBroker, user: BrokerUser, clientId: string, clean = true): Promise<number | undefined> {
  try {
    const client = await mqtt.connectAsync(tcpUrl(broker), { ...login(user), clientId, clean, reconnectPeriod: 0, connectTimeout: 10_000 })
    await client.endAsync()
    return 0
  } catch (error) {
    return connackCode(error)
  }
}

test("an instance user may not take the hub's client ids: CONNACK 5, a log line, and the holder keeps its connection", async (t) => {
  const { broker, records } = await secured(t)
  const coordinatorId = clientIds.coordinator('trinity')
  const holder = await connect(t, tcpUrl(broker), { ...login(hubAdmin), clientId: coordinatorId, clean: false })
  let kicked = 0
  holder.on('close', () => kicked++)
  for (const id of [coordinatorId, clientIds.bridge('trinity', '1'), clientIds.supervisor(4242), clientIds.agent('trinity', 'bob')]) {
    assert.equal(await tryConnect(broker, araya, id), 5, `araya as ${id}`)
    const line = records.find((r) => r['clientId'] === id && r['username'] === 'araya')
    assert.ok(line !== undefined, `a log line names user and client id: ${JSON.stringify(records.map((r) => r['msg']))}`)
    assert.equal(line['level'], 40)
    assert.match(String(line['msg']), /not authorized/)
  }
  // The same for a client-role user, and with a persistent session.
  assert.equal(await tryConnect(broker, ops, coordinatorId, false), 5)
  assert.equal(kicked, 0, 'the coordinator was never kicked')
  assert.equal(holder.connected, true)
  // A round trip on the holder still works: its session is its own.
  await holder.subscribeAsync('trinity/hub/stats', { qos: 1 })
})

test("an instance user may use the agent SDK's id for its own instance id, and any id nobody else holds", async (t) => {
  const { broker } = await secured(t)
  assert.equal(await tryConnect(broker, araya, clientIds.agent('trinity', 'araya'), false), 0)
  assert.equal(await tryConnect(broker, araya, 'paho-araya', false), 0)
  assert.equal(await tryConnect(broker, ops, 'ops-tail-1'), 0)
})

test('an id another user holds is refused, connected or as a persistent session, and is free again after a clean one', async (t) => {
  const { broker } = await secured(t)
  const bobs = await connect(t, tcpUrl(broker), { ...login(bob), clientId: 'instance-bob', clean: false })
  let kicked = 0
  bobs.on('close', () => kicked++)
  assert.equal(await tryConnect(broker, araya, 'instance-bob'), 5, 'while bob is connected')
  assert.equal(kicked, 0)
  await bobs.endAsync()
  assert.equal(await tryConnect(broker, araya, 'instance-bob', false), 5, "bob's persistent session is still bob's")
  assert.equal(await tryConnect(broker, bob, 'instance-bob', false), 0, 'bob resumes it')
  // A clean session leaves nothing to take: the id is free once it is gone.
  assert.equal(await tryConnect(broker, ops, 'scratch-id'), 0)
  assert.equal(await tryConnect(broker, araya, 'scratch-id'), 0)
})

test('an admin may take any id, the hub admin among them', async (t) => {
  const { broker } = await secured(t)
  const first = await connect(t, tcpUrl(broker), { ...login(araya), clientId: clientIds.agent('trinity', 'araya') })
  assert.equal(first.connected, true)
  assert.equal(await tryConnect(broker, hubAdmin, clientIds.agent('trinity', 'araya')), 0)
})

test('with auth off, client ids are not bound (anonymous clients are one user)', async (t) => {
  const broker = await startBroker(t)
  const holder = await connect(t, tcpUrl(broker), { clientId: clientIds.coordinator('trinity') })
  const closed = new Promise<void>((resolve) => holder.once('close', () => resolve()))
  const taker = await connect(t, tcpUrl(broker), { clientId: clientIds.coordinator('trinity') })
  await closed
  assert.equal(taker.connected, true)
})
