/**
 * A client that sends its headers and then a body byte every few hundred ms is cut off by
 * hub.requestTimeout (issue #14: with Fastify's default such a request held its connection forever),
 * and the hub serves other requests meanwhile.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import type { Hub } from '../src/hub.js'
import { http, LIVENESS_FLOOR_MS, startTestHub, tempDir, testConfig } from './helpers/hub.js'

const dir = tempDir()
let hub: Hub
before(async () => {
  hub = await startTestHub(await testConfig(dir.path, { hub: { requestTimeout: '2s' } }))
})
after(async () => {
  await hub.stop()
  dir.remove()
})

test('a body trickled one byte at a time is cut off by hub.requestTimeout, other requests are served meanwhile', async () => {
  const url = new URL(hub.httpUrl)
  const socket = connect(Number(url.port), url.hostname)
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  let answer = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { answer += chunk })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let open = true
  void closed.then(() => { open = false })
  socket.on('error', () => undefined) // a write racing the server's close: the close is what is awaited
  socket.write(`POST /task HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`)
  const trickle = setInterval(() => { if (open) socket.write(' ') }, 300)
  const startedAt = Date.now()
  try {
    // While the trickle runs, the hub answers others.
    const health = await http(hub.httpUrl, 'GET', '/health')
    assert.equal(health.status, 200)
    const bound = new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), LIVENESS_FLOOR_MS).unref())
    const outcome = await Promise.race([closed.then(() => 'closed' as const), bound])
    assert.equal(outcome, 'closed', 'the trickling connection must be closed by the hub')
    // Node answers 408 when it can; a close without an answer is also a cut.
    if (answer !== '') assert.match(answer, /^HTTP\/1\.1 408 /)
    console.log(`# trickled request cut after ${Date.now() - startedAt} ms (hub.requestTimeout 2s), answer: ${answer.split('\r\n')[0] ?? ''}`)
    const after = await http(hub.httpUrl, 'GET', '/health')
    assert.equal(after.status, 200)
  } finally {
    clearInterval(trickle)
    socket.destroy()
  }
})

test('hub.requestTimeout defaults to 30s', async () => {
  const { parseConfig } = await import('../src/config/load.js')
  const config = parseConfig('hub: {}\n', 'x.yaml')
  assert.equal(config.hub.requestTimeoutMs, 30_000)
})
