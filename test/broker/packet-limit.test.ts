/**
 * MQTT packets are bounded before they are buffered (issue #14, finding 7).
 * Aedes's parser holds a packet whole until its last byte: six 255 MB
 * publishes took the hub to 5.4 GB, four unauthenticated 250 MB CONNECTs
 * (auth on) held 1.1 GB before they were refused, and a 50 MB retained
 * message knocked the coordinator off the bus. `limits.maxPacket` (default
 * maxPayload + 64 KiB) is judged from the fixed header: over it, the
 * connection closes at once, logged with the client's address.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { ConfigError, parseConfig } from '../../src/config/load.js'
import type { HubError } from '../../src/contract/payloads/hub.js'
import { topicsFor } from '../../src/contract/topics.js'
import { clientIds } from '../../src/net/client-ids.js'
import { IncomingSizeGuard } from '../../broker/mqtt-framing.js'
import { http, spawnHub, startTestHub, testConfig, testScope, waitFor, writeConfig, type HubProcess } from '../helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')
const MB = 1024 * 1024
const ANNOUNCED = 250 * MB
const root = { username: 'root', password: 'root-secret' }

/** The remaining length as a variable byte integer [MQTT-2.2.3]. */
function varint(value: number): Buffer {
  const bytes: number[] = []
  let rest = value
  do {
    let byte = rest % 128
    rest = Math.floor(rest / 128)
    if (rest > 0) byte |= 0x80
    bytes.push(byte)
  } while (rest > 0)
  return Buffer.from(bytes)
}

function mqttString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8')
  const length = Buffer.alloc(2)
  length.writeUInt16BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** A CONNECT (MQTT 3.1.1, clean, no keep-alive) with a username and password. */
function connectPacket(clientId: string, username: string, password: string): Buffer {
  const body = Buffer.concat([mqttString('MQTT'), Buffer.from([4, 0xc2, 0, 0]), mqttString(clientId), mqttString(username), mqttString(password)])
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body])
}

/** Kilobytes in the hub's resident set: now, and its peak so far (Linux /proc). */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: field('VmRSS'), peak: field('VmHWM') }
}

/**
 * Writes `head`, then filler up to the announced size, 1 MB at a time with
 * backpressure, until the hub closes the socket. Resolves with the bytes the
 * kernel took (what the hub read, plus what sat in socket buffers).
 */
async function flood(port: number, head: Buffer, announcedTotal: number, before?: (socket: Socket) => Promise<void>): Promise<{ written: number; closedByHub: boolean }> {
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => undefined)
  let closed = false
  socket.once('close', () => { closed = true })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  await before?.(socket)
  const filler = Buffer.alloc(MB, 0x61)
  let written = 0
  const write = (chunk: Buffer): Promise<void> => new Promise((resolve) => {
    if (closed || socket.destroyed) return resolve()
    written += chunk.length
    if (socket.write(chunk)) resolve()
    else {
      const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve() }
      socket.once('drain', done)
      socket.once('close', done)
    }
  })
  await write(head)
  while (!closed && written < announcedTotal) await write(filler.subarray(0, Math.min(MB, announcedTotal - written)))
  const closedByHub = closed
  if (!closed) await new Promise<void>((resolve) => { socket.once('close', () => resolve()); socket.end() })
  socket.destroy()
  return { written, closedByHub }
}

async function startHubProcess(): Promise<HubProcess> {
  const config = await testConfig(dir.path, {
    log: { level: 'warn' },
    // The broker is under test, not the HTTP API (which broker auth would want tokens for).
    hub: { allowInsecure: true },
    broker: { auth: { enabled: true, users: [{ ...root, role: 'admin' }, { username: 'c1', password: 'c1-secret', role: 'instance' }] } },
  })
  const hub = await spawnHub(writeConfig(dir.path, config))
  cleanups.push(() => hub.kill())
  return hub
}

test('the size guard reads only fixed headers, across chunk boundaries', () => {
  const guard = new IncomingSizeGuard(1000)
  const small = Buffer.concat([Buffer.from([0x30]), varint(990), Buffer.alloc(990)])
  // One byte at a time: header bytes split anywhere, bodies skipped.
  for (const byte of Buffer.concat([small, small])) assert.equal(guard.check(Buffer.from([byte])), null)
  assert.equal(guard.check(Buffer.from([0xc0, 0x00])), null, 'PINGREQ')
  const big = Buffer.concat([Buffer.from([0x30]), varint(ANNOUNCED)])
  assert.equal(guard.check(big.subarray(0, 2)), null, 'a length not yet complete')
  assert.deepEqual(guard.check(big.subarray(2)), { type: 3, announcedBytes: 1 + 4 + ANNOUNCED })
  assert.deepEqual(new IncomingSizeGuard(1000).check(Buffer.from([0x10, ...varint(998)])), { type: 1, announcedBytes: 1001 })
})

test('limits.maxPacket: maxPayload + 64 KiB by default, a size, at least limits.maxPayload', () => {
  assert.equal(parseConfig('', 'x.yaml').limits.maxPacket, MB + 64 * 1024)
  assert.equal(parseConfig('limits:\n  maxPayload: 4mb\n', 'x.yaml').limits.maxPacket, 4 * MB + 64 * 1024)
  assert.equal(parseConfig('limits:\n  maxPacket: 2mb\n', 'x.yaml').limits.maxPacket, 2 * MB)
  assert.throws(() => parseConfig('limits:\n  maxPayload: 1mb\n  maxPacket: 512kb\n', 'x.yaml'), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    const p = err.problems[0]
    assert.match(`${p?.file}:${p?.line}:${p?.col}: ${p?.field}: ${p?.expected}`, /^x\.yaml:3:14: limits\.maxPacket: expected at least limits\.maxPayload, 1 MiB/)
    return true
  })
})

test('a 250 MB CONNECT or PUBLISH is cut at its header: the hub does not buffer it, and the others keep working', async () => {
  const hub = await startHubProcess()
  const pid = hub.child.pid!
  const port = Number(new URL(hub.mqttUrl).port)
  const bystander = await mqtt.connectAsync(hub.mqttUrl, { ...root, clientId: 'bystander', reconnectPeriod: 0 })
  cleanups.push(() => bystander.endAsync())
  let bystanderClosed = false
  bystander.on('close', () => { bystanderClosed = true })
  await bystander.subscribeAsync(topics.hubErrors, { qos: 1 })
  const said: HubError[] = []
  bystander.on('message', (topic, payload) => { if (topic === topics.hubErrors) said.push(JSON.parse(payload.toString()) as HubError) })
  const before = memory(pid).rss

  // An unauthenticated CONNECT (auth is on): a valid start, then filler.
  const connectHead = Buffer.concat([Buffer.from([0x10]), varint(ANNOUNCED), mqttString('MQTT'), Buffer.from([4, 0x02, 0, 0]), mqttString('flood')])
  for (let i = 0; i < 2; i++) {
    const { written, closedByHub } = await flood(port, connectHead, ANNOUNCED + 5)
    assert.equal(closedByHub, true, 'the hub closed the connection')
    assert.ok(written < 64 * MB, `cut early: ${written} bytes written before the close (socket buffers included)`)
  }
  // An authenticated client's PUBLISH.
  const publishHead = Buffer.concat([Buffer.from([0x30]), varint(ANNOUNCED), mqttString(topics.taskSubmit)])
  for (let i = 0; i < 2; i++) {
    const { written, closedByHub } = await flood(port, publishHead, ANNOUNCED + 5, async (socket) => {
      socket.write(connectPacket(`publisher-${i}`, root.username, root.password))
      const connack = await new Promise<Buffer>((resolve) => socket.once('data', resolve))
      assert.deepEqual([...connack], [0x20, 2, 0, 0], 'CONNACK accepted')
    })
    assert.equal(closedByHub, true)
    assert.ok(written < 64 * MB, `cut early: ${written} bytes written`)
  }
  const after = memory(pid)
  assert.ok(after.peak - before < 200 * MB, `the hub's RSS peaked ${Math.round((after.peak - before) / MB)} MB over where it was`)

  // Logged with the client's address, and said on hub/errors.
  await waitFor(() => said.filter((e) => e.code === 'TRINITY_ERR_PACKET_TOO_LARGE').length === 4, 30_000, 'four refusals on hub/errors')
  assert.match(said[0]?.reason ?? '', /limits\.maxPacket/)
  assert.ok(said.some((e) => e.clientId === 'publisher-0'), 'a connected client is named')
  // The log reaches us through the hub's stdout pipe, which may lag behind the bus.
  const refusalLines = (): string[] => hub.output().split('\n').filter((line) => line.includes('limits.maxPacket'))
  await waitFor(() => refusalLines().length >= 4, 30_000, () => `four refusals in the log:\n${hub.output()}`)
  const lines = refusalLines()
  assert.equal(lines.length, 4, hub.output())
  assert.match(lines[0] ?? '', /"peer":"127\.0\.0\.1:\d+"/)

  // Nobody else noticed: the bystander is connected and the hub takes tasks.
  assert.equal(bystanderClosed, false)
  await bystander.publishAsync(topics.taskSubmit, JSON.stringify({ id: 'after-flood', type: 'general', content: 'x' }), { qos: 1 })
  await waitFor(async () => (await http(hub.httpUrl, 'GET', '/tasks/after-flood')).status === 200, 30_000, 'the task after the flood stored')
  const health = await http<{ status: string }>(hub.httpUrl, 'GET', '/health')
  assert.equal(health.body.status, 'ok')
})

test('a 50 MB retained message is refused and does not knock the coordinator off', async () => {
  const hub = await startHubProcess()
  const watcher = await mqtt.connectAsync(hub.mqttUrl, { ...root, clientId: 'watcher', reconnectPeriod: 0 })
  cleanups.push(() => watcher.endAsync())
  const disconnected: string[] = []
  const submits: number[] = []
  watcher.on('message', (topic, payload) => {
    if (topic.endsWith('/disconnect/clients')) disconnected.push(payload.toString())
    if (topic === topics.taskSubmit) submits.push(payload.length)
  })
  await watcher.subscribeAsync({ '$SYS/+/disconnect/clients': { qos: 0 }, [topics.taskSubmit]: { qos: 1 } })

  const big = await mqtt.connectAsync(hub.mqttUrl, { ...root, clientId: 'big-retained', reconnectPeriod: 0 })
  const gone = new Promise<void>((resolve) => big.once('close', () => resolve()))
  big.publish(topics.taskSubmit, Buffer.alloc(50 * MB, 0x20), { qos: 1, retain: true })
  let cut = false
  await Promise.race([gone.then(() => { cut = true }), new Promise((resolve) => setTimeout(resolve, 60_000))])
  assert.equal(cut, true, 'the publisher of the 50 MB message was disconnected (liveness bound 60 s)')
  await big.endAsync(true)

  // A task submitted now is stored: the coordinator is on the bus, and never left it.
  const marker = await mqtt.connectAsync(hub.mqttUrl, { ...root, clientId: 'marker', reconnectPeriod: 0 })
  cleanups.push(() => marker.endAsync())
  await marker.publishAsync(topics.taskSubmit, JSON.stringify({ id: 'after-big', type: 'general', content: 'x' }), { qos: 1 })
  await waitFor(async () => (await http(hub.httpUrl, 'GET', '/tasks/after-big')).status === 200, 30_000, 'the task after the big message stored')
  await waitFor(() => disconnected.includes('big-retained'), 30_000, 'the publisher of the big message to be seen leaving')
  assert.equal(disconnected.includes(clientIds.coordinator(topics.prefix)), false, `the coordinator stayed on: ${disconnected.join(', ')}`)
  assert.ok(submits.every((bytes) => bytes < MB), 'the big message reached nobody')
  // Nothing was retained: a new subscriber to the topic gets no retained message before a fresh marker.
  const late = await mqtt.connectAsync(hub.mqttUrl, { ...root, clientId: 'late', reconnectPeriod: 0 })
  cleanups.push(() => late.endAsync())
  const lateSeen: number[] = []
  late.on('message', (_topic, payload) => lateSeen.push(payload.length))
  await late.subscribeAsync(topics.taskSubmit, { qos: 1 })
  const probe = JSON.stringify({ id: 'probe', type: 'general', content: 'x' })
  await marker.publishAsync(topics.taskSubmit, probe, { qos: 1 })
  await waitFor(() => lateSeen.length > 0, 30_000, 'the probe')
  assert.deepEqual(lateSeen, [Buffer.byteLength(probe)])
})

test('over MQTT on WebSocket too: a huge announced packet, or a frame over the bound, closes the connection', async () => {
  const hub = await startTestHub(await testConfig(`${dir.path}/ws`))
  cleanups.push(() => hub.stop())
  const url = `${hub.httpUrl.replace('http', 'ws')}/mqtt`
  const open = async (): Promise<{ socket: WebSocket; closed: Promise<number> }> => {
    const socket = new WebSocket(url, ['mqtt'])
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
    socket.on('error', () => undefined)
    await new Promise<void>((resolve, reject) => { socket.once('open', () => resolve()); socket.once('error', reject) })
    return { socket, closed }
  }
  // A small frame whose MQTT header announces 250 MB: cut at the header, as on TCP.
  const announced = await open()
  announced.socket.send(Buffer.concat([Buffer.from([0x10]), varint(ANNOUNCED), mqttString('MQTT'), Buffer.from([4, 0x02, 0, 0])]))
  await announced.closed
  // One WebSocket frame larger than limits.maxPacket: ws refuses it (1009) before the broker would hold it.
  const frame = await open()
  frame.socket.send(Buffer.alloc(2 * MB, 0x61))
  assert.equal(await frame.closed, 1009, 'message too big')
  // A normal MQTT-over-WebSocket client still connects.
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
  cleanups.push(() => client.endAsync())
  assert.equal(client.connected, true)
})
