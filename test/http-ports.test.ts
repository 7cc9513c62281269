/**
 * Probes and adapter calls reach every port: fetch refuses WHATWG "bad ports"
 * (6000, where the seed's Visitor Intelligence listens, 6665-6669, 5060…)
 * with a bare `fetch failed`. Here a real server on 127.0.0.x:6000 (x random,
 * so parallel runs never collide) is health-checked online and gets a task
 * by POST; a refused bad port gives the real cause in the reason; published
 * times have 2 decimals; a slow warm-up answer does not pin the p95.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import type { Health } from '../src/contract/payloads/instance.js'
import { topicsFor } from '../src/contract/topics.js'
import { httpRequestTo } from '../src/net/http-request.js'
import { http, startTestHub, testConfig, testScope, waitFor } from './helpers/hub.js'

const { dir, cleanups } = testScope()

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** A server on 127.0.0.x:`port` for a random x in 2..250 (another x when that address is taken). */
async function listenOnBadPort(port: number, handler: Handler): Promise<{ server: Server; host: string }> {
  for (let attempt = 0; ; attempt++) {
    const host = `127.0.0.${2 + Math.floor(Math.random() * 249)}`
    const server = createServer(handler)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => resolve())
      })
      cleanups.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
      return { server, host }
    } catch (err) {
      if (attempt >= 20) throw err
    }
  }
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

async function healthRecords(mqttUrl: string, id: string): Promise<Health[]> {
  const client = await mqtt.connectAsync(mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => client.endAsync())
  const records: Health[] = []
  client.on('message', (_t, payload) => { if (payload.length > 0) records.push(JSON.parse(payload.toString()) as Health) })
  await client.subscribeAsync(topicsFor('trinity').health(id), { qos: 1 })
  return records
}

test('fetch really refuses port 6000 (why node:http), and http-request reaches it', async () => {
  const { host } = await listenOnBadPort(6000, (_req, res) => json(res, 200, { ok: true }))
  const refused = await fetch(`http://${host}:6000/health`).then(() => 'answered', (err: Error & { cause?: Error }) => String(err.cause?.message ?? err.message))
  assert.match(refused, /bad port/, 'if fetch ever accepts port 6000, this workaround can go')
  const answer = await httpRequestTo(`http://${host}:6000/health`, { timeoutMs: 30_000 })
  assert.equal(answer.status, 200)
  assert.deepEqual(JSON.parse(answer.text()), { ok: true })
})

test('an HTTP instance on port 6000 is online by its health checks and completes a task by POST', async () => {
  let healthChecks = 0
  const { host } = await listenOnBadPort(6000, (req, res) => {
    if (req.method === 'GET' && req.url === '/health') { healthChecks++; return json(res, 200, { status: 'ok' }) }
    if (req.method === 'POST' && req.url === '/task') {
      let body = ''
      req.on('data', (d: Buffer) => { body += d.toString() })
      req.on('end', () => {
        const task = JSON.parse(body) as { content: string }
        json(res, 200, { output: { echoed: task.content, port: 6000 } })
      })
      return
    }
    json(res, 404, {})
  })
  const hub = await startTestHub(await testConfig(dir.path + '/a', {
    instances: [{ id: 'visitor-intelligence', adapter: 'http', url: `http://${host}:6000`, capabilities: ['track_user'] }],
    health: { interval: '200ms', timeout: '5s', degradedAfter: '5s' },
    routes: { track_user: { targets: ['visitor-intelligence'] } },
  }))
  cleanups.push(() => hub.stop())
  const records = await healthRecords(hub.mqttUrl, 'visitor-intelligence')
  await waitFor(() => records.filter((r) => r.state === 'online').length >= 3, 60_000, 'three online checks on port 6000')
  assert.ok(healthChecks >= 3)
  assert.equal(hub.coordinator.registry.get('visitor-intelligence')?.state, 'online')

  const { body } = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'track_user', content: 'page view' })
  let task: TaskRecord | undefined
  await waitFor(async () => {
    task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${body.id}`)).body
    return task.state === 'completed' || task.state === 'failed' || task.state === 'dead'
  }, 60_000, 'the task to finish')
  assert.equal(task?.state, 'completed', JSON.stringify(task))
  assert.deepEqual(task?.result, { echoed: 'page view', port: 6000 })
})

test('a refused bad port: the reason is the real cause, not "fetch failed"', async () => {
  // Bound and closed at once: an address of ours where nothing listens on 6666 (an IRC port fetch refuses).
  const { server, host } = await listenOnBadPort(6666, (_req, res) => json(res, 200, {}))
  await new Promise<void>((resolve) => server.close(() => resolve()))
  const hub = await startTestHub(await testConfig(dir.path + '/b', {
    instances: [{ id: 'gone', healthUrl: `http://${host}:6666/health` }],
    health: { interval: '200ms', timeout: '5s', missesBeforeOffline: 2 },
  }))
  cleanups.push(() => hub.stop())
  await waitFor(() => (hub.coordinator.registry.get('gone')?.checks ?? 0) >= 1, 60_000, 'a check of gone')
  const reason = hub.coordinator.registry.get('gone')?.reason ?? ''
  assert.equal(reason, `connect ECONNREFUSED ${host}:6666`)
})

test('published response times have 2 decimals, and a slow warm-up answer does not stay in the p95', async () => {
  const WARM_UP_MS = 1500
  let answered = 0
  const { host } = await listenOnBadPort(6667, (_req, res) => {
    // The first answer is slow, as a cold instance's is; then fast.
    if (answered++ === 0) setTimeout(() => json(res, 200, {}), WARM_UP_MS)
    else json(res, 200, {})
  })
  const hub = await startTestHub(await testConfig(dir.path + '/c', {
    instances: [{ id: 'cold', healthUrl: `http://${host}:6667/health` }],
    health: { interval: '200ms', timeout: '30s', degradedAfter: '60s' },
  }))
  cleanups.push(() => hub.stop())
  const records = await healthRecords(hub.mqttUrl, 'cold')
  await waitFor(() => records.filter((r) => r.responseMs !== null).length >= 6, 60_000, 'six answered checks')
  const answers = records.filter((r) => r.responseMs !== null)
  for (const r of answers) {
    for (const value of [r.responseMs, r.avgMs, r.p95Ms]) {
      assert.ok(typeof value === 'number' && Math.round(value * 100) / 100 === value, `2 decimals: ${JSON.stringify(r)}`)
    }
  }
  const [first, ...later] = answers
  assert.ok((first?.responseMs ?? 0) >= WARM_UP_MS, `the warm-up answer is published as it was: ${JSON.stringify(first)}`)
  const last = later.at(-1)
  // The window holds the later answers only, so its p95 (with under 20 samples, its maximum) is one of theirs.
  assert.equal(last?.p95Ms, Math.max(...later.map((r) => r.responseMs ?? 0)), JSON.stringify(answers))
  assert.notEqual(last?.p95Ms, first?.responseMs)
})
