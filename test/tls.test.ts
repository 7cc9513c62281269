/**
 * TLS (issue #14, "Build"): `hub.tls` serves the API over HTTPS and MQTT over
 * WebSocket as WSS; `broker.tls` adds an mqtts listener. A self-signed
 * certificate made by `openssl req` in a temp dir; real clients that trust it
 * (node:https, MQTT.js `mqtts://`, ws `wss://`) and one that does not.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { ConfigError, parseConfig } from '../src/config/load.js'
import type { Hub } from '../src/hub.js'
import { startTestHub, tempDir, testConfig } from './helpers/hub.js'

const dir = tempDir()
let hub: Hub
let ca: Buffer
before(async () => {
  const cert = join(dir.path, 'cert.pem')
  const key = join(dir.path, 'key.pem')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' })
  assert.equal(made.status, 0, made.stderr)
  ca = readFileSync(cert)
  hub = await startTestHub(await testConfig(dir.path, { hub: { tls: { cert, key } }, broker: { tls: { cert, key, port: 0 } } }))
})
after(async () => {
  await hub.stop()
  dir.remove()
})

function get(url: string, trust: Buffer | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...(trust === undefined ? {} : { ca: trust }), agent: false }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

test('hub.tls: the API answers over HTTPS to a client that trusts the certificate, and not over plain HTTP', async () => {
  assert.match(hub.httpUrl, /^https:\/\/127\.0\.0\.1:\d+$/)
  const health = await get(`${hub.httpUrl}/health`, ca)
  assert.equal(health.status, 200)
  assert.deepEqual(JSON.parse(health.body), { status: 'ok', bus: 'connected', store: 'ok', role: 'leader' })
  await assert.rejects(get(`${hub.httpUrl}/health`, undefined), /self[- ]signed/i, 'an untrusted certificate is refused by the client')
  const plain = await fetch(hub.httpUrl.replace('https', 'http') + '/health').then((r) => r.status, (e: Error) => e.message)
  assert.notEqual(plain, 200, 'no plain HTTP on that port')
})

test('broker.tls: an MQTT.js mqtts:// client with the CA reaches the bus; MQTT over WebSocket is WSS', async () => {
  const port = hub.broker?.tlsPort
  assert.equal(typeof port, 'number')
  const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${String(port)}`, { ca, reconnectPeriod: 0 })
  try {
    const stats = new Promise<string>((resolve) => client.once('message', (_t, payload) => resolve(payload.toString())))
    await client.subscribeAsync('trinity/hub/stats', { qos: 0 })
    assert.ok(JSON.parse(await stats) !== null, 'hub/stats arrives over mqtts')
  } finally {
    await client.endAsync()
  }
  await assert.rejects(mqtt.connectAsync(`mqtts://127.0.0.1:${String(port)}`, { reconnectPeriod: 0 }), /self[- ]signed/i)
  const opened = await new Promise<string>((resolve) => {
    const socket = new WebSocket(`${hub.httpUrl.replace('https', 'wss')}/mqtt`, 'mqtt', { ca })
    socket.once('open', () => { socket.close(); resolve('open') })
    socket.once('error', (err) => resolve(err.message))
  })
  assert.equal(opened, 'open')
})

test('a TLS file that is not there is a config error at its line', () => {
  assert.throws(() => parseConfig('hub:\n  tls: { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem }\n', 'x.yaml'), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.match(err.message, /x\.yaml:2:\d+: hub\.tls\.cert: expected a PEM file, \/nonexistent\/cert\.pem does not exist/)
    return true
  })
})
