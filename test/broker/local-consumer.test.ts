/**
 * The broker's in-process consumer (broker/local-consumer.ts), through which
 * the embedded hub's coordinator reads the bus (issue #12). It must keep what
 * the coordinator's persistent MQTT session gave it: nothing acknowledged
 * before it is handled, nothing lost before it attaches, retained messages
 * first, and what an older hub queued in that session handed over once.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import mqtt from 'mqtt'
import { clientIds } from '../../src/net/client-ids.js'
import { captureLog, connect, startBroker, tcpUrl, tempDir, topics } from './helpers.js'

const FILTERS = [topics.taskSubmit, topics.anyInstanceStatus]
const coordinatorId = clientIds.coordinator(topics.prefix)

/** An older hub's broker journal: the coordinator's persistent session, away while `submissions` were acknowledged. */
async function olderHubQueued(t: TestContext, dataDir: string, submissions: string[]): Promise<void> {
  const old = await startBroker(t, { persistence: 'disk', dataDir })
  const session = await connect(t, tcpUrl(old), { clientId: coordinatorId, clean: false })
  await session.subscribeAsync(topics.taskSubmit, { qos: 1 })
  await session.endAsync()
  const publisher = await connect(t, tcpUrl(old))
  for (const m of submissions) await publisher.publishAsync(topics.taskSubmit, m, { qos: 1 })
  await publisher.endAsync()
  await old.close()
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

test('clients wait at the door until the consumer attaches; then retained messages first, then live ones', async (t) => {
  const dataDir = await tempDir(t)
  // A retained status from an earlier run, in the journal.
  const first = await startBroker(t, { persistence: 'disk', dataDir })
  const earlier = await connect(t, tcpUrl(first))
  await earlier.publishAsync(topics.instanceStatus('a'), 'status-a', { qos: 1, retain: true })
  await earlier.endAsync()
  await first.close()

  const broker = await startBroker(t, { persistence: 'disk', dataDir, local: { filters: FILTERS } })
  const early = mqtt.connect(tcpUrl(broker), { reconnectPeriod: 0, connectTimeout: 60_000 })
  t.after(() => early.endAsync(true))
  const connected = new Promise<void>((resolve) => early.once('connect', () => resolve()))
  await new Promise<void>((resolve) => early.stream.once('connect', () => resolve()))
  // TCP is up and CONNECT sent; a broker that let it in would answer within a few turns.
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r))
  assert.equal(early.connected, false, 'no CONNACK before the consumer attached')
  assert.equal(broker.connectedClients, 0)

  const seen: string[] = []
  await broker.local?.attach((topic, payload, ack) => { seen.push(`${topic}=${payload.toString()}`); ack() })
  await connected
  await early.publishAsync(topics.taskSubmit, 'm1', { qos: 1 })
  await early.publishAsync(topics.taskSubmit, 'm2', { qos: 1 })
  assert.deepEqual(seen, [`${topics.instanceStatus('a')}=status-a`, `${topics.taskSubmit}=m1`, `${topics.taskSubmit}=m2`],
    'each PUBACK came after its message was handled')
})

test('what the broker publishes before the consumer attaches is delivered at attach, once: a retained topic as its newest message', async (t) => {
  const broker = await startBroker(t, { local: { filters: FILTERS } })
  const local = broker.local
  assert.ok(local !== undefined)
  const published = (topic: string, payload: string, retain: boolean): Promise<void> =>
    new Promise((resolve) => local.publish(topic, payload, { qos: 1, retain }, () => resolve()))
  const statuses = [published(topics.instanceStatus('b'), 'online-1', true), published(topics.instanceStatus('b'), 'online-2', true)]
  const submit = published(topics.taskSubmit, 'task-1', false)
  const seen: string[] = []
  await local.attach((_topic, payload, ack) => { seen.push(payload.toString()); ack() })
  await Promise.all([...statuses, submit])
  await until('the submission', () => seen.includes('task-1'))
  // As a client subscribing now would see it: the retained copy, not the superseded one after it or the copy twice.
  assert.deepEqual(seen.filter((p) => p.startsWith('online')), ['online-2'])
  assert.deepEqual(seen.filter((p) => p === 'task-1'), ['task-1'])
})

test('what an older hub queued in the coordinator\'s persistent session is handed over once, in order', async (t) => {
  const dataDir = await tempDir(t)
  await olderHubQueued(t, dataDir, ['s1', 's2', 's3'])

  const { logger, records } = captureLog()
  const upgraded = await startBroker(t, { persistence: 'disk', dataDir, logger, local: { filters: FILTERS, adoptSession: coordinatorId } })
  const seen: string[] = []
  await upgraded.local?.attach((_topic, payload, ack) => { seen.push(payload.toString()); ack() })
  assert.deepEqual(seen, ['s1', 's2', 's3'])
  assert.ok(records.some((r) => r['clientId'] === coordinatorId && r['messages'] === 3), 'the hand-over is logged')
  // The old session no longer collects anything: a new submission is not journaled for it.
  const after = await connect(t, tcpUrl(upgraded))
  await after.publishAsync(topics.taskSubmit, 's4', { qos: 1 })
  await until('s4', () => seen.length === 4)
  await after.endAsync()
  await upgraded.close()

  const again = await startBroker(t, { persistence: 'disk', dataDir, local: { filters: FILTERS, adoptSession: coordinatorId } })
  const later: string[] = []
  await again.local?.attach((_topic, payload, ack) => { later.push(payload.toString()); ack() })
  assert.deepEqual(later, [], 'handed over once: nothing comes back at the next start')
})

test('a handler that throws: the message is acknowledged, the error logged, the next one delivered', async (t) => {
  const { logger, records } = captureLog()
  const broker = await startBroker(t, { logger, local: { filters: FILTERS } })
  const seen: string[] = []
  await broker.local?.attach((_topic, payload, ack) => {
    if (payload.toString() === 'bad') throw new Error('handler bug')
    seen.push(payload.toString())
    ack()
  })
  const publisher = await connect(t, tcpUrl(broker))
  await publisher.publishAsync(topics.taskSubmit, 'bad', { qos: 1 })
  await publisher.publishAsync(topics.taskSubmit, 'good', { qos: 1 })
  assert.deepEqual(seen, ['good'])
  assert.ok(records.some((r) => r['topic'] === topics.taskSubmit && /in-process consumer failed/.test(String(r['msg']))))
})

test('publish: no client, so no ACL; subscribers get it as from the broker', async (t) => {
  const broker = await startBroker(t, { auth: { enabled: true, users: [{ username: 'r', password: 'r', role: 'reader' }] }, local: { filters: FILTERS } })
  await broker.local?.attach((_t, _p, ack) => ack())
  const reader = await connect(t, tcpUrl(broker), { username: 'r', password: 'r' })
  await reader.subscribeAsync(topics.hubStats, { qos: 0 })
  const got = new Promise<string>((resolve) => reader.once('message', (_t, p) => resolve(p.toString())))
  await new Promise<void>((resolve, reject) => broker.local?.publish(topics.hubStats, '{"n":1}', { qos: 0, retain: false }, (err) => (err === undefined ? resolve() : reject(err))))
  assert.equal(await got, '{"n":1}')
})

test('a handler may ack later (group commit): the PUBACK waits for it, and a second ack does nothing', async (t) => {
  const broker = await startBroker(t, { local: { filters: FILTERS } })
  const held: (() => void)[] = []
  await broker.local?.attach((_topic, _payload, ack) => { held.push(ack) })
  const publisher = await connect(t, tcpUrl(broker))
  let acked = false
  const done = publisher.publishAsync(topics.taskSubmit, 'later', { qos: 1 }).then(() => { acked = true })
  await until('the message handled', () => held.length === 1)
  // The PUBACK is written only after the ack: another client's round trip first, then still none.
  const probe = await connect(t, tcpUrl(broker))
  await probe.publishAsync(`${topics.prefix}/elsewhere`, 'x', { qos: 1 })
  assert.equal(acked, false, 'no PUBACK before the handler acked')
  held[0]?.()
  held[0]?.()
  await done
  assert.equal(acked, true)
})

test('a hand-over the consumer has not acked yet (its commit not done) is handed over again after a crash; once acked, never', async (t) => {
  const dataDir = await tempDir(t)
  await olderHubQueued(t, dataDir, ['h1', 'h2'])

  const options = { persistence: 'disk' as const, dataDir, local: { filters: FILTERS, adoptSession: coordinatorId } }
  // Handed over, not acked (the consumer's commit never happened): the broker stops.
  const first = await startBroker(t, options)
  const held: string[] = []
  await first.local?.attach((_topic, payload) => { held.push(payload.toString()) })
  assert.deepEqual(held, ['h1', 'h2'])
  await first.close()

  const second = await startBroker(t, options)
  const acks: (() => void)[] = []
  const again: string[] = []
  await second.local?.attach((_topic, payload, ack) => { again.push(payload.toString()); acks.push(ack) })
  assert.deepEqual(again, ['h1', 'h2'], 'not acked: still in the journal')
  for (const ack of acks) ack()
  await second.close()

  const third = await startBroker(t, options)
  const last: string[] = []
  await third.local?.attach((_topic, payload, ack) => { last.push(payload.toString()); ack() })
  assert.deepEqual(last, [], 'acked: gone from the journal')
})
