/**
 * src/net/bus-client.ts, the one way Trinity's processes open the bus, on the
 * embedded broker: the client ids persistent sessions are keyed on, no-delay
 * on every connection, the options reaching the broker (id, clean, Will), and
 * both ways of awaiting the first connect.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { MqttClient } from 'mqtt'
import { busClient, connectBus, firstConnect } from '../src/net/bus-client.js'
import { clientIds } from '../src/net/client-ids.js'
import { freePort, waitFor } from './helpers/hub.js'
import { startBroker, tcpUrl, topics } from './broker/helpers.js'

/** Node's record of setNoDelay on a socket (there is no public getter). */
function noDelayOf(client: MqttClient): boolean {
  const stream = client.stream as unknown as Record<symbol, unknown>
  const symbol = Object.getOwnPropertySymbols(stream).find((s) => s.description === 'kSetNoDelay')
  assert.ok(symbol !== undefined, 'this Node records no-delay on the socket')
  return stream[symbol] === true
}

test('client ids keep the scheme persistent sessions are keyed on', () => {
  assert.equal(clientIds.coordinator('trinity'), 'trinity-coordinator-trinity')
  assert.equal(clientIds.coordinator('lab/x'), 'trinity-coordinator-lab-x')
  assert.equal(clientIds.agent('lab/x', 'builder'), 'trinity-agent-lab-x-builder')
  assert.equal(clientIds.bridge('trinity', '2'), 'trinity-bridge-trinity-2')
  assert.equal(clientIds.supervisor(4242), 'trinity-supervisor-4242')
  assert.equal(clientIds.supervisor(), `trinity-supervisor-${process.pid}`)
})

test('no-delay is on for the first connection and after a reconnect; off only when asked', async (t) => {
  const broker = await startBroker(t)
  const client = await connectBus({ url: tcpUrl(broker), reconnectPeriod: 50 }, 'first-error')
  t.after(() => client.endAsync(true))
  assert.equal(noDelayOf(client), true)
  const first = client.stream
  client.stream.destroy()
  await waitFor(() => client.connected && client.stream !== first, 30_000, 'the reconnect')
  assert.equal(noDelayOf(client), true)

  const plain = await connectBus({ url: tcpUrl(broker), reconnectPeriod: 0, noDelay: false }, 'first-error')
  t.after(() => plain.endAsync(true))
  assert.equal(noDelayOf(plain), false)
})

test('id, clean: false and the Will reach the broker: a queued message is kept for the id, the Will published on a drop', async (t) => {
  const broker = await startBroker(t)
  const url = tcpUrl(broker)
  const id = clientIds.agent(topics.prefix, 'bus-client-test')
  const inbox = topics.instanceInbox('bus-client-test')
  const status = topics.instanceStatus('bus-client-test')
  const watcher = await connectBus({ url }, 'first-error')
  t.after(() => watcher.endAsync(true))
  const seen: string[] = []
  watcher.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`))
  await watcher.subscribeAsync(status, { qos: 1 })

  const options = { url, clientId: id, clean: false, reconnectPeriod: 0, will: { topic: status, payload: Buffer.from('gone'), qos: 1 as const, retain: false } }
  const first = await connectBus(options, 'first-error')
  await first.subscribeAsync(inbox, { qos: 1 })
  first.stream.destroy()
  await waitFor(() => seen.includes(`${status} gone`), 30_000, 'the Will')

  await watcher.publishAsync(inbox, 'queued while away', { qos: 1 })
  const received: string[] = []
  const again = await connectBus(options, 'first-error', (c) => c.on('message', (_topic, payload) => received.push(payload.toString())))
  t.after(() => again.endAsync(true))
  await waitFor(() => received.includes('queued while away'), 30_000, 'the queued message')
})

test("'first-error': a refused connection rejects with its cause and ends the client", async () => {
  const port = await freePort()
  let client: MqttClient | undefined
  await assert.rejects(
    connectBus({ url: `mqtt://127.0.0.1:${port}`, reconnectPeriod: 50 }, 'first-error', (c) => { client = c }),
    (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
  )
  await waitFor(() => client?.disconnected === true, 30_000, 'the client to end')
})

test('retryForMs: a broker that comes up later is waited for; none at all gives the caller\'s error', async (t) => {
  const port = await freePort()
  const late = busClient({ url: `mqtt://127.0.0.1:${port}`, reconnectPeriod: 50 })
  const errors: string[] = []
  late.on('error', (err) => errors.push(err.message))
  t.after(() => late.endAsync(true))
  const connected = firstConnect(late, { retryForMs: 60_000, error: () => new Error('no broker') })
  await waitFor(() => errors.length > 0, 30_000, 'a refused attempt')
  await startBroker(t, { port })
  await connected

  const never = busClient({ url: `mqtt://127.0.0.1:${await freePort()}`, reconnectPeriod: 50 })
  never.on('error', () => undefined)
  t.after(() => never.endAsync(true))
  await assert.rejects(firstConnect(never, { retryForMs: 300, error: () => new Error('no broker') }), /^Error: no broker$/)
})

test('a comma-separated URL list: a node that refuses is passed over, a reconnect moves to the next', async (t) => {
  const broker = await startBroker(t)
  const down = `mqtt://127.0.0.1:${await freePort()}`
  const client = busClient({ url: `${down}, ${tcpUrl(broker)}`, reconnectPeriod: 50 })
  t.after(() => client.endAsync(true))
  // The first connect goes to `down` and is refused; the reconnect goes to the broker.
  await firstConnect(client, { retryForMs: 30_000, error: () => new Error('no CONNACK from either URL') })
  assert.equal(client.connected, true)
  const first = client.stream
  // Round the list: the next reconnect tries `down` again, then the broker.
  client.stream.destroy()
  await waitFor(() => client.connected && client.stream !== first, 30_000, 'the reconnect round the list')
})
