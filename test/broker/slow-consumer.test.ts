/**
 * One slow consumer cannot stall the broker (issue #14, finding 2).
 *
 * A raw MQTT client subscribes to `trinity/#` and then stops reading its
 * socket. On plain Aedes every delivery to it waits for its socket to drain,
 * which holds the broker's publish pipeline: delivery to every other client
 * froze until Aedes's drain timeout (60 s) cut it, and a reconnect froze it
 * again. The hub bounds each client's unsent bytes (`limits.maxClientBuffer`)
 * and cuts the one client that goes over it; the others never wait.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import mqtt from 'mqtt'
import { ConfigError, parseConfig } from '../../src/config/load.js'
import type { HubError } from '../../src/contract/payloads/hub.js'
import { topicsFor } from '../../src/contract/topics.js'
import { TestInstance } from '../helpers/instance.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'

const { dir, cleanups } = testScope()

/** `promise`, or a failure naming `what` after a generous liveness bound. */
async function within(promise: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms) })
  try {
    await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** MQTT 3.1.1 string: two length bytes, then UTF-8 [MQTT-1.5.3]. */
function mqttString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8')
  const length = Buffer.alloc(2)
  length.writeUInt16BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** A packet under 128 bytes: one remaining-length byte [MQTT-2.2.3]. */
function packet(firstByte: number, body: Buffer): Buffer {
  assert.ok(body.length < 128)
  return Buffer.concat([Buffer.from([firstByte, body.length]), body])
}

/**
 * A client that CONNECTs (clean session, keep-alive off, so the broker never
 * times it out for silence), SUBSCRIBEs to `filter` at QoS 0, reads its
 * CONNACK and SUBACK, and then reads nothing more.
 */
async function stalledSubscriber(port: number, clientId: string, filter: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const connectBody = Buffer.concat([mqttString('MQTT'), Buffer.from([4, 0x02, 0, 0]), mqttString(clientId)])
  const subscribeBody = Buffer.concat([Buffer.from([0, 1]), mqttString(filter), Buffer.from([0])])
  socket.write(Buffer.concat([packet(0x10, connectBody), packet(0x82, subscribeBody)]))
  // CONNACK (20 02 00 00) and SUBACK (90 03 00 01 00): 9 bytes.
  let received = Buffer.alloc(0)
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk])
      if (received.length < 9) return
      socket.off('data', onData)
      socket.pause()
      resolve()
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error(`${clientId} closed before its SUBACK`)))
  })
  assert.deepEqual([...received.subarray(0, 9)], [0x20, 2, 0, 0, 0x90, 3, 0, 1, 0], `${clientId}: CONNACK accepted, SUBACK granted QoS 0`)
  return { socket, closed }
}

test('a subscriber to trinity/# that stops reading is cut off alone: 3,000 tasks complete, a reading subscriber stays, hub/errors says why', async () => {
  const hub = await startTestHub(await testConfig(dir.path, {
    // Births and Wills only: no periodic health checks to miss on a loaded machine.
    health: { interval: '1h' },
    // Not a lease test: 3,000 submissions arrive at once, and on a loaded machine an
    // inbox frame can wait behind them longer than the test config's 5 s lease.
    tasks: { fallback: { targets: ['w1'] }, lease: '10m' },
  }))
  cleanups.push(() => hub.stop())
  const port = hub.broker?.port
  assert.ok(port !== undefined, 'embedded broker')
  const topics = topicsFor()

  const worker = await TestInstance.start({ url: hub.mqttUrl, id: 'w1', concurrency: 64 })
  cleanups.push(() => worker.close())
  await waitFor(() => hub.coordinator.registry.get('w1')?.state === 'online', 30_000, 'w1 online')

  // A subscriber to everything that does read, and watches hub/errors.
  const reader = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'reading-subscriber', reconnectPeriod: 0 })
  cleanups.push(() => reader.endAsync(true))
  let readerClosed = false
  reader.on('close', () => { readerClosed = true })
  let seenByReader = 0
  const slowConsumerErrors: HubError[] = []
  reader.on('message', (topic, payload) => {
    seenByReader++
    if (topic !== topics.hubErrors) return
    const error = JSON.parse(payload.toString()) as HubError
    const code: string = error.code
    if (code === 'TRINITY_ERR_SLOW_CONSUMER') slowConsumerErrors.push(error)
  })
  await reader.subscribeAsync('trinity/#', { qos: 0 })

  // The stalled subscriber comes back each time it is cut, as the probe's did: three in a row.
  const stalled: { id: string; socket: Socket; closed: Promise<void> }[] = []
  let attackerDone = false
  const attack = async (n: number): Promise<void> => {
    const id = `slow-${n}`
    const client = await stalledSubscriber(port, id, 'trinity/#')
    stalled.push({ id, ...client })
    cleanups.push(() => client.socket.destroy())
    await client.closed
    if (n < 3 && !attackerDone) await attack(n + 1)
  }
  // After the test (a failure included) the hub is gone: a last reconnect may be refused.
  const attacking = attack(1).catch(() => undefined)

  // 3,000 tasks of 4 KB each: each passes trinity/# several times (submission,
  // inbox frame, events), far more than the kernel's socket buffers and the bound.
  const submitter = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'submitter', reconnectPeriod: 0 })
  cleanups.push(() => submitter.endAsync(true))
  const n = 3000
  const content = 'x'.repeat(4096)
  for (let i = 0; i < n; i++) submitter.publish(topics.taskSubmit, JSON.stringify({ type: 'bulk', content: `${i} ${content}` }), { qos: 1 })

  await waitFor(() => hub.coordinator.stats().tasks.completed >= n, 300_000,
    () => `${n} tasks completed beside a stalled subscriber (now ${JSON.stringify(hub.coordinator.stats().tasks)})`)
  attackerDone = true

  // The first stalled subscriber was cut by the broker, and said so with its id and the limit.
  await waitFor(() => slowConsumerErrors.some((e) => e.clientId === 'slow-1'), 30_000, 'a TRINITY_ERR_SLOW_CONSUMER reason for slow-1 on hub/errors')
  const first = slowConsumerErrors.find((e) => e.clientId === 'slow-1')
  assert.match(first?.reason ?? '', /limits\.maxClientBuffer/)
  assert.match(first?.topic ?? '', /^trinity\//, 'the topic of the delivery that went over the bound')
  const slow1 = stalled[0]
  assert.ok(slow1 !== undefined)
  slow1.socket.resume() // read what was sent before the cut, to the end
  await within(slow1.closed, 60_000, 'slow-1 closed by the broker')

  // The reading subscriber was never touched and saw the whole run.
  assert.equal(readerClosed, false, 'the reading subscriber stayed connected')
  assert.ok(reader.connected)
  assert.ok(seenByReader >= 2 * n, `the reading subscriber saw the traffic (${seenByReader} messages)`)
  await reader.publishAsync('trinity/probe/after', 'still here', { qos: 1 })

  for (const { socket } of stalled) socket.destroy()
  await attacking
})

test('limits.maxClientBuffer: 8 MiB by default (twice limits.maxPayload if larger), a size, at least twice limits.maxPayload', () => {
  assert.equal(parseConfig('', 'x.yaml').limits.maxClientBuffer, 8 * 1024 * 1024)
  assert.equal(parseConfig('limits:\n  maxPayload: 16mb\n', 'x.yaml').limits.maxClientBuffer, 32 * 1024 * 1024)
  assert.equal(parseConfig('limits:\n  maxClientBuffer: 64mb\n', 'x.yaml').limits.maxClientBuffer, 64 * 1024 * 1024)
  assert.equal(parseConfig('limits:\n  maxClientBuffer: 3000000\n', 'x.yaml').limits.maxClientBuffer, 3_000_000)
  assert.throws(() => parseConfig('limits:\n  maxPayload: 1mb\n  maxClientBuffer: 1mb\n', 'x.yaml'), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    const [problem] = err.problems
    assert.match(`${problem?.file}:${problem?.line}:${problem?.col}: ${problem?.field}: ${problem?.expected}`,
      /^x\.yaml:3:20: limits\.maxClientBuffer: expected at least twice limits\.maxPayload, 2 MiB \(2097152 bytes\)$/)
    return true
  })
  assert.throws(() => parseConfig('limits:\n  maxClientBuffer: lots\n', 'x.yaml'), (err: unknown) => err instanceof ConfigError && err.problems[0]?.field === 'limits.maxClientBuffer')
})
