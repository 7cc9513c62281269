/**
 * What the embedded broker (MQTT 3.1.1) says to MQTT 5 habits (issue #10,
 * point 4): an MQTT 5 client is refused and the hub's log names it; a
 * `$share/...` subscription is refused with a failure SUBACK instead of
 * being granted as a literal filter that never receives anything.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { promisify } from 'node:util'
import mqtt, { ErrorWithSubackPacket } from 'mqtt'
import { pino } from 'pino'
import { parseConfig } from '../../src/config/load.js'
import { startHub } from '../../src/hub.js'
import { stringify } from 'yaml'
import { testConfig, testScope } from '../helpers/hub.js'
import { connect, nextMessage, startBroker, tcpUrl } from './helpers.js'

const { dir, cleanups } = testScope()

/** A pino logger whose records land in an array. */
function capture(): { log: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = []
  const sink = new Writable({ write(chunk: Buffer, _encoding, done) { records.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  return { log: pino({ level: 'info' }, sink), records }
}

test('an MQTT 5 client is refused, and the hub log names its client id and protocol', async () => {
  const { log, records } = capture()
  const hub = await startHub(parseConfig(stringify(await testConfig(dir.path)), 'test.yaml'), log)
  cleanups.push(() => hub.stop())
  await assert.rejects(
    mqtt.connectAsync(hub.mqttUrl, { protocolVersion: 5, clientId: 'a-v5-client', reconnectPeriod: 0, connectTimeout: 5000 }),
    (error: Error & { code?: number }) => {
      // CONNACK return code 1 [MQTT-3.1.2-2]; an MQTT 5 client may show it as 132.
      assert.ok(error.code === 1 || error.code === 132, `refused for its protocol version: ${error.message} (${String(error.code)})`)
      return true
    },
  )
  const line = records.find((r) => r['clientId'] === 'a-v5-client')
  assert.ok(line !== undefined, `a log line names the client: ${JSON.stringify(records.map((r) => r['msg']))}`)
  assert.equal(line['level'], 40, 'a warning')
  assert.equal(line['protocolVersion'], 5)
  assert.match(String(line['msg']), /MQTT protocol level 5 is not supported.*MQTT 3\.1\.1.*broker\.mode external with Mosquitto 2/)
  // mosquitto_sub speaking MQTT 5 hears 132, "unsupported protocol version", and is named in the log too.
  const port = new URL(hub.mqttUrl).port
  const mosquitto = await promisify(execFile)('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', '5', '-i', 'a-v5-mosquitto', '-t', 'trinity/#', '-C', '1'], { timeout: 30_000 })
    .then(() => ({ code: 0, stderr: '' }), (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }))
  assert.equal(mosquitto.code, 132, mosquitto.stderr)
  assert.match(mosquitto.stderr, /Unsupported Protocol Version/)
  assert.ok(records.some((r) => r['clientId'] === 'a-v5-mosquitto' && r['protocolVersion'] === 5), 'the log names the mosquitto_sub client')
  // MQTT 3.1.1 clients are unaffected.
  const v4 = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'a-v4-client', reconnectPeriod: 0 })
  cleanups.push(() => v4.endAsync())
  assert.equal(v4.connected, true)
  assert.equal(records.some((r) => r['clientId'] === 'a-v4-client'), false, 'nothing logged for a client that is accepted')
})

test('MQTT.js: a $share/ filter gets a failure SUBACK (0x80), the other filters in the packet are granted', async (t) => {
  const broker = await startBroker(t)
  const client = await connect(t, tcpUrl(broker))
  await assert.rejects(client.subscribeAsync({ '$share/g/trinity/#': { qos: 1 }, 'trinity/plain/#': { qos: 1 } }), (error: unknown) => {
    assert.ok(error instanceof ErrorWithSubackPacket, String(error))
    assert.deepEqual(error.packet.granted, [0x80, 1])
    return true
  })
  // The plain filter works; the refused one was not stored as a literal subscription.
  const publisher = await connect(t, tcpUrl(broker))
  const arrived = nextMessage(client)
  await publisher.publishAsync('trinity/plain/x', 'hello', { qos: 1 })
  assert.deepEqual(await arrived, { topic: 'trinity/plain/x', payload: 'hello' })
  await assert.rejects(client.subscribeAsync('$share', { qos: 0 }), ErrorWithSubackPacket)
})

test('mosquitto_sub -V mqttv311 on $share/g/trinity/# is told that its subscription was denied', async (t) => {
  const broker = await startBroker(t)
  const { stdout, stderr } = await promisify(execFile)(
    'mosquitto_sub', ['-h', '127.0.0.1', '-p', String(broker.port), '-V', 'mqttv311', '-t', '$share/g/trinity/#', '-d'],
    { timeout: 30_000 },
  )
  assert.match(stdout, /Subscribed \(mid: \d+\): 128/)
  assert.match(stderr, /All subscription requests were denied/)
})
