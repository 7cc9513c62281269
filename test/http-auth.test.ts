/**
 * The HTTP API behind tokens (issue #14, finding 6): 401 without or with a
 * wrong token, 403 naming the scope a route needs, each scope's routes, a
 * `from` bound to the token's name, the three ways to give a token, and the
 * routes that stay public. A real hub with broker auth on, real HTTP.
 */
import { createHash } from 'node:crypto'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { AuthSession, ErrorBody } from '../src/contract/http.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'
import { topicsFor } from '../src/contract/topics.js'

const t = topicsFor()

const READ = 'read-token-0123456789abcdef'
const SUBMIT = 'submit-token-0123456789abcdef'
const ADMIN = 'admin-token-0123456789abcdef'
const FROM_ENV = 'env-token-0123456789abcdef'
const ENV_NAME = 'TRINITY_TEST_HTTP_AUTH_TOKEN'

const dir = tempDir()
let hub: Hub
let c1: TestInstance
before(async () => {
  process.env[ENV_NAME] = FROM_ENV
  hub = await startTestHub(await testConfig(dir.path, {
    hub: { auth: { tokens: [
      { name: 'viewer', scope: 'read', token: READ },
      { name: 'ops', scope: 'submit', tokenHash: createHash('sha256').update(SUBMIT).digest('hex') },
      { name: 'root', scope: 'admin', token: ADMIN },
      { name: 'fromenv', scope: 'read', tokenEnv: ENV_NAME },
    ] } },
    broker: { auth: { enabled: true, users: [{ username: 'c1', password: 'c1-secret', role: 'instance' }] } },
  }))
  c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', username: 'c1', password: 'c1-secret', manual: true })
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 30_000, 'c1 online')
})
after(async () => {
  await c1.close()
  await hub.stop()
  delete process.env[ENV_NAME]
  dir.remove()
})

async function call<T = unknown>(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(`${hub.httpUrl}${path}`, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  const json = (response.headers.get('content-type') ?? '').startsWith('application/json')
  return { status: response.status, body: (json ? JSON.parse(text) : text) as T, headers: response.headers }
}

test('without a token, or with a wrong one, every API route answers 401 with WWW-Authenticate; /health and the pages stay public', async () => {
  const routes: [string, string, unknown?][] = [
    ['GET', '/'], ['GET', '/tasks'], ['GET', '/tasks/x'], ['GET', '/instances'], ['GET', '/messages'], ['GET', '/metrics'], ['GET', '/auth/bus'],
    ['POST', '/task', { type: 'general', content: 'anonymous' }], ['POST', '/send', { from: 'c1', to: 'c1', message: 'forged' }],
    ['POST', '/tasks/x/cancel'], ['POST', '/tasks/x/retry'], ['POST', '/instances/c1/restart'], ['DELETE', '/instances/c1'], ['POST', '/sync'],
  ]
  for (const token of [undefined, 'not-a-token-of-this-hub', `${READ}x`]) {
    for (const [method, path, body] of routes) {
      const r = await call<ErrorBody>(method, path, token, body)
      assert.equal(r.status, 401, `${method} ${path} with ${token ?? 'no token'}: ${JSON.stringify(r.body)}`)
      assert.equal(r.body.error.code, 'TRINITY_ERR_UNAUTHORIZED')
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="trinity"')
    }
  }
  assert.equal(hub.coordinator.scheduler.list({ limit: 10 }).length, 0, 'nothing anonymous was stored')
  assert.equal((await call('GET', '/health')).status, 200)
  assert.equal((await call('GET', '/command')).status, 200)
  assert.equal((await call('GET', '/dashboard-assets/style.css')).status, 200)
})

test('a read token reads everything and changes nothing: 403 naming the scope needed', async () => {
  for (const path of ['/', '/tasks', '/instances', '/messages', '/metrics']) {
    assert.equal((await call('GET', path, READ)).status, 200, path)
  }
  const submit = await call<ErrorBody>('POST', '/task', READ, { type: 'general', content: 'x' })
  assert.equal(submit.status, 403)
  assert.equal(submit.body.error.code, 'TRINITY_ERR_FORBIDDEN')
  assert.match(submit.body.error.message, /POST \/task needs scope submit, token viewer has read/)
  const cancel = await call<ErrorBody>('POST', '/tasks/x/cancel', READ)
  assert.equal(cancel.status, 403)
  assert.match(cancel.body.error.message, /needs scope admin/)
  // The token from tokenEnv works as its own read token.
  assert.equal((await call('GET', '/tasks', FROM_ENV)).status, 200)
  assert.equal((await call('POST', '/task', FROM_ENV, { type: 'general', content: 'x' })).status, 403)
})

test('a submit token submits and sends as itself, but may not cancel, retry or restart; admin may', async () => {
  const accepted = await call<{ id: string }>('POST', '/task', SUBMIT, { type: 'general', content: 'by ops' })
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body))
  for (const path of [`/tasks/${accepted.body.id}/cancel`, `/tasks/${accepted.body.id}/retry`, '/instances/c1/restart', '/sync']) {
    const r = await call<ErrorBody>('POST', path, SUBMIT)
    assert.equal(r.status, 403, path)
    assert.match(r.body.error.message, /needs scope admin, token ops has submit/)
  }
  assert.equal((await call<ErrorBody>('DELETE', '/instances/c1', SUBMIT)).status, 403)
  const cancelled = await call<{ state: string }>('POST', `/tasks/${accepted.body.id}/cancel`, ADMIN)
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body))
  assert.equal(cancelled.body.state, 'cancelled')
})

test('POST /send: `from` is the token\'s name unless the token is admin; a forged `from` is refused', async () => {
  const forged = await call<ErrorBody>('POST', '/send', SUBMIT, { from: 'c1', to: 'c1', message: 'pretending to be c1' })
  assert.equal(forged.status, 403)
  assert.equal(forged.body.error.code, 'TRINITY_ERR_FORBIDDEN')
  assert.equal(forged.body.error.field, 'from')
  assert.equal(hub.coordinator.store.recentMessages(10, { from: 'c1' }).length, 0, 'nothing sent as c1')
  const own = await call<{ from: string }>('POST', '/send', SUBMIT, { from: 'ops', to: 'c1', message: 'from ops' })
  assert.equal(own.status, 202, JSON.stringify(own.body))
  assert.equal(own.body.from, 'ops')
  const relayed = await call<{ from: string }>('POST', '/send', ADMIN, { from: 'c1', to: 'c1', message: 'relayed by an admin' })
  assert.equal(relayed.status, 202)
})

test('GET /auth/bus tells the token\'s name and scope, and gives a bus login that only reads', async () => {
  const session = await call<AuthSession>('GET', '/auth/bus', READ)
  assert.equal(session.status, 200)
  assert.equal(session.body.name, 'viewer')
  assert.equal(session.body.scope, 'read')
  assert.notEqual(session.body.bus, null)
  const { default: mqtt } = await import('mqtt')
  const reader = await mqtt.connectAsync(hub.mqttUrl, { username: session.body.bus?.username ?? '', password: session.body.bus?.password ?? '', reconnectPeriod: 0 })
  try {
    const seen: string[] = []
    reader.on('message', (topic) => seen.push(topic))
    const granted = await reader.subscribeAsync(t.all, { qos: 1 })
    assert.equal(granted[0]?.qos, 1, 'it may read')
    // Its submission is dropped by the broker (acknowledged, delivered to no one); c1's message after it arrives.
    await reader.publishAsync(t.taskSubmit, JSON.stringify({ id: 'by-reader', type: 'general', content: 'x' }), { qos: 1 })
    await c1.client.publishAsync(t.message('c1', 'c1'), JSON.stringify({ id: 'marker', from: 'c1', to: 'c1', message: 'marker', ts: Date.now() }), { qos: 1 })
    await waitFor(() => seen.includes(t.message('c1', 'c1')), 30_000, 'the marker')
    assert.equal(seen.includes(t.taskSubmit), false, 'the reader could not submit')
    assert.equal(hub.coordinator.scheduler.get('by-reader'), undefined)
  } finally {
    await reader.endAsync()
  }
})
