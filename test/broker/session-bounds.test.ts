/**
 * What an absent persistent session keeps is bounded (issue #14, medium
 * findings): an abandoned session used to keep every QoS 1 message for ever
 * (136 MB of journal per 5,000 tasks, reloaded at each start). Now, while its
 * client is away, at most `limits.sessionMaxMessages` are kept and none older
 * than `limits.sessionMaxAge`; the oldest go first, with a log line, and out
 * of the journal too. The coordinator's session is not bounded: it holds
 * acknowledged submissions.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import mqtt from 'mqtt'
import { OutgoingQueues, type QueuedPacket } from '../../broker/outgoing-queues.js'
import { parseConfig } from '../../src/config/load.js'
import { clientIds } from '../../src/net/client-ids.js'
import { captureLog, connect, record, startBroker, tcpUrl, tempDir, topics } from './helpers.js'

test('limits.sessionMaxMessages and sessionMaxAge: 10,000 and 24 h by default, configurable', () => {
  const limits = parseConfig('', 'x.yaml').limits
  assert.deepEqual([limits.sessionMaxMessages, limits.sessionMaxAgeMs], [10_000, 24 * 3600_000])
  const set = parseConfig('limits:\n  sessionMaxMessages: 50\n  sessionMaxAge: 2h\n', 'x.yaml').limits
  assert.deepEqual([set.sessionMaxMessages, set.sessionMaxAgeMs], [50, 2 * 3600_000])
  assert.throws(() => parseConfig('limits:\n  sessionMaxMessages: 0\n', 'x.yaml'), /limits\.sessionMaxMessages/)
})

test('an absent session keeps the newest sessionMaxMessages, across a restart; the coordinator keeps all', async (t) => {
  const dataDir = await tempDir(t)
  const { logger, records } = captureLog()
  const options = { persistence: 'disk' as const, dataDir, session: { maxMessages: 5, maxAgeMs: 24 * 3600_000 }, logger }
  const broker = await startBroker(t, options)
  const away = await connect(t, tcpUrl(broker), { clientId: 'abandoned', clean: false })
  await away.subscribeAsync(topics.instanceInbox('gone'), { qos: 1 })
  await away.endAsync()
  const coordinatorId = clientIds.coordinator('trinity')
  const coordinator = await connect(t, tcpUrl(broker), { clientId: coordinatorId, clean: false })
  await coordinator.subscribeAsync(topics.instanceInbox('gone'), { qos: 1 })
  await coordinator.endAsync()
  const publisher = await connect(t, tcpUrl(broker))
  for (let i = 0; i < 20; i++) await publisher.publishAsync(topics.instanceInbox('gone'), `m${i}`, { qos: 1 })
  const line = records.find((r) => r['clientId'] === 'abandoned')
  assert.match(String(line?.['msg']), /dropped the oldest 1 message\(s\) queued for an absent session: over limits\.sessionMaxMessages, 5/)
  assert.equal(records.filter((r) => r['clientId'] === 'abandoned').length, 15, 'one line per drop')
  await publisher.endAsync()
  await broker.close()

  // After a restart, the journal holds what was kept, no more.
  const again = await startBroker(t, options)
  const expect = async (clientId: string, wanted: string[]): Promise<void> => {
    // Listening before the CONNACK: the queue follows right behind it.
    const back = mqtt.connect(tcpUrl(again), { clientId, clean: false, reconnectPeriod: 0 })
    t.after(() => back.endAsync(true))
    const seen = record(back)
    await new Promise<void>((resolve) => back.once('connect', () => resolve()))
    const deadline = Date.now() + 30_000
    while (seen.length < wanted.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    // A marker on its own topic: nothing more was queued behind what came.
    await back.subscribeAsync(`${topics.prefix}/marker/${clientId}`, { qos: 1 })
    const marker = new Promise<void>((resolve) => back.on('message', (topic) => { if (topic.endsWith(`/marker/${clientId}`)) resolve() }))
    await back.publishAsync(`${topics.prefix}/marker/${clientId}`, 'end', { qos: 1 })
    await marker
    assert.deepEqual(seen.filter((m) => m.topic === topics.instanceInbox('gone')).map((m) => m.payload), wanted, clientId)
  }
  await expect('abandoned', ['m15', 'm16', 'm17', 'm18', 'm19'])
  await expect(coordinatorId, Array.from({ length: 20 }, (_, i) => `m${i}`))
})

test('a connected session is never cut; what aged while a client was away goes when it returns (injected clock)', () => {
  let now = 0
  let online = false
  const drops: [string, number, string][] = []
  const queues = new OutgoingQueues((p) => ({ ...p }), {
    maxMessages: 3, maxAgeMs: 1000, now: () => now,
    isAbsent: () => !online, exempt: (id) => id === 'hub',
    onDrop: (id, dropped, why) => drops.push([id, dropped.length, why]),
  })
  const packet = (n: number): QueuedPacket => ({ brokerId: 'b', brokerCounter: n, topic: 't', payload: `p${n}` })
  const ids = (id: string): Promise<unknown[]> => queues.stream(id).toArray().then((list) => list.map((p) => (p as QueuedPacket)['payload']))
  online = true
  for (let n = 0; n < 6; n++) queues.enqueue('c', packet(n))
  assert.deepEqual(drops, [], 'online: in flight, not cut')
  online = false
  now = 500
  queues.enqueue('c', packet(6))
  assert.deepEqual(drops, [['c', 4, 'count']])
  now = 1200
  queues.enqueue('c', packet(7))
  assert.deepEqual(drops.at(-1), ['c', 2, 'age'], 'p4 and p5 (queued at 0) aged out')
  now = 1600
  return ids('c').then((left) => {
    assert.deepEqual(left, ['p7'], 'p6 (queued at 500) aged out on return')
    for (let n = 10; n < 20; n++) queues.enqueue('hub', packet(n))
    return ids('hub')
  }).then((hub) => assert.equal(hub.length, 10, 'an exempt session keeps all'))
})
