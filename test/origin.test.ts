/**
 * Origin / CSRF (issue #14, finding 6): on a hub with no tokens (the README
 * tour), a browser page of another origin may neither change state over HTTP
 * (body-less POSTs included) nor open MQTT over WebSocket; the hub's own
 * origin, `hub.allowedOrigins` and non-browser clients (no Origin) pass.
 * Real HTTP and real WebSocket handshakes with the headers browsers send;
 * test/web/cross-origin.test.ts does the same from a real Chromium page.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import type { ErrorBody } from '../src/contract/http.js'
import type { Hub } from '../src/hub.js'
import { startTestHub, tempDir, testConfig } from './helpers/hub.js'

const ALLOWED = 'https://ops.example:8443'
const dir = tempDir()
let hub: Hub
before(async () => {
  hub = await startTestHub(await testConfig(dir.path, { hub: { allowedOrigins: [ALLOWED] } }))
})
after(async () => {
  await hub.stop()
  dir.remove()
})

async function post(path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: ErrorBody }> {
  const response = await fetch(`${hub.httpUrl}${path}`, {
    method: 'POST',
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: response.status, body: (await response.json()) as ErrorBody }
}

async function submitted(id: string): Promise<string> {
  const r = await post('/task', {}, { id, type: 'general', content: 'victim' })
  assert.ok(r.status === 202 || r.status === 200, JSON.stringify(r.body))
  return id
}

test('a POST from a foreign Origin, or marked cross-site, is refused with 403 and changes nothing', async () => {
  const id = await submitted('origin-victim')
  const foreign: Record<string, string>[] = [
    { origin: 'http://evil.example' },
    { origin: 'null' },
    { origin: hub.httpUrl.replace('127.0.0.1', 'localhost') },
    { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' },
  ]
  for (const headers of foreign) {
    for (const path of [`/tasks/${id}/cancel`, '/instances/c1/restart', '/sync']) {
      const r = await post(path, headers)
      assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}`)
      assert.equal(r.body.error.code, 'TRINITY_ERR_ORIGIN_REFUSED')
      assert.equal(r.body.error.field, 'origin')
    }
    const task = await post('/task', headers, { type: 'general', content: 'forged' })
    assert.equal(task.status, 403)
  }
  assert.equal(hub.coordinator.scheduler.get(id)?.state, 'queued', 'the body-less cancel never ran')
  assert.equal(hub.coordinator.scheduler.list({ limit: 10 }).length, 1, 'no forged task')
})

test('the hub\'s own origin, hub.allowedOrigins and clients without Origin may POST', async () => {
  const own = { origin: hub.httpUrl, 'sec-fetch-site': 'same-origin' }
  const a = await post('/task', own, { id: 'own-origin', type: 'general', content: 'x' })
  assert.equal(a.status, 202, JSON.stringify(a.body))
  const b = await post('/task', { origin: ALLOWED, 'sec-fetch-site': 'cross-site' }, { id: 'allowed-origin', type: 'general', content: 'x' })
  assert.equal(b.status, 202, JSON.stringify(b.body))
  const c = await post('/tasks/own-origin/cancel', {})
  assert.equal(c.status, 200, JSON.stringify(c.body))
  // A GET (which a foreign page cannot read: no CORS headers) is not refused.
  assert.equal((await fetch(`${hub.httpUrl}/tasks`, { headers: { origin: 'http://evil.example' } })).status, 200)
})

/** The handshake's outcome: `open`, or the HTTP status the hub refused it with. */
function handshake(origin: string | undefined): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${hub.httpUrl.replace('http', 'ws')}/mqtt`, 'mqtt', origin === undefined ? {} : { origin })
    socket.once('open', () => { socket.close(); resolve('open') })
    socket.once('unexpected-response', (_request, response) => { resolve(response.statusCode ?? 0); socket.terminate() })
    socket.once('error', (err) => reject(err))
  })
}

test('MQTT over WebSocket: a foreign Origin\'s upgrade is refused with 403; the own origin, an allowed one and no Origin connect', async () => {
  assert.equal(await handshake('http://evil.example'), 403)
  assert.equal(await handshake('null'), 403)
  assert.equal(await handshake(hub.httpUrl), 'open')
  assert.equal(await handshake(ALLOWED), 'open')
  assert.equal(await handshake(undefined), 'open')
})
