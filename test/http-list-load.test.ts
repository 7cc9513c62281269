/**
 * The work one GET /tasks can cause is bounded (issue #14: 20 anonymous `GET /tasks?limit=1000` loops raised
 * task round trips from 9 ms to 11 s): whole records (`full=true`) at most 100 a page, summaries at most 1000,
 * a 400 naming `limit` above; and while 20 loops of the largest list run, a submitted task still completes.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ErrorBody, TaskList } from '../src/contract/http.js'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { LIVENESS_FLOOR_MS, http, startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'

const dir = tempDir()
let hub: Hub
let c1: TestInstance
before(async () => {
  // Health is not under test: on a loaded machine a late ping answer must not take c1 (and the task) away.
  hub = await startTestHub(await testConfig(dir.path, {
    routes: { general: { targets: ['c1'] } },
    health: { timeout: '30s', degradedAfter: '20s', missesBeforeOffline: 5 },
    tasks: { lease: '60s' },
  }))
  c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', capabilities: ['general'], concurrency: 50 })
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', LIVENESS_FLOOR_MS, 'c1 online')
  // 1,000 stored tasks, each with a body, so a list of 1,000 is a real one.
  for (let batch = 0; batch < 10; batch++) {
    for (let i = batch * 100; i < (batch + 1) * 100; i++) hub.coordinator.submit({ id: `load-${i}`, type: 'general', content: { text: 'x'.repeat(2000), i } })
    await waitFor(() => hub.coordinator.taskCounts().completed >= (batch + 1) * 100, 120_000, `seeded tasks, batch ${batch}, completed`)
  }
})
after(async () => {
  await c1.close()
  await hub.stop()
  dir.remove()
})

test('GET /tasks bounds limit: 1000 summaries, 100 whole records; above, 400 naming limit', async () => {
  const summaries = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?limit=1000')
  assert.equal(summaries.status, 200)
  assert.equal(summaries.body.tasks.length, 1000)
  const full = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?full=true&limit=100')
  assert.equal(full.status, 200)
  assert.equal(full.body.tasks.length, 100)
  for (const path of ['/tasks?full=true&limit=1000', '/tasks?full=true&limit=101', '/tasks?limit=1001']) {
    const refused = await http<ErrorBody>(hub.httpUrl, 'GET', path)
    assert.equal(refused.status, 400, path)
    assert.equal(refused.body.error.field, 'limit', path)
  }
  const refused = await http<ErrorBody>(hub.httpUrl, 'GET', '/tasks?full=true&limit=500')
  assert.match(refused.body.error.message, /limit: at most 100 with full=true/)
})

test('while 20 loops list 1,000 tasks each, a submitted task still completes', async () => {
  // The 20 clients in a process of their own, as on the wire: their parsing must not load the hub's event loop.
  const script = `let n = 0; const url = ${JSON.stringify(`${hub.httpUrl}/tasks?limit=1000`)};
    const loop = async () => { for (;;) { const r = await fetch(url); if (r.status !== 200) process.exit(3); await r.arrayBuffer(); if (++n % 20 === 0) console.log(n) } };
    for (let i = 0; i < 20; i++) void loop()`
  const clients = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let lists = 0
  clients.stdout.setEncoding('utf8').on('data', (chunk: string) => { for (const line of chunk.trim().split('\n')) lists = Math.max(lists, Number(line)) })
  const exited = new Promise<number | null>((resolve) => clients.once('exit', (code) => resolve(code)))
  try {
    await waitFor(() => lists >= 20, LIVENESS_FLOOR_MS, 'the list loops to be running')
    const startedAt = Date.now()
    const submitted = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { id: 'under-load', type: 'general', content: 'x' })
    assert.equal(submitted.status, 202)
    let task: TaskRecord | undefined
    await waitFor(async () => {
      task = (await http<TaskRecord>(hub.httpUrl, 'GET', '/tasks/under-load')).body
      return task.state === 'completed'
    }, LIVENESS_FLOOR_MS, () => `the task submitted under load to complete (${lists} lists so far; the task: ${JSON.stringify(task)})`)
    assert.equal(task?.state, 'completed')
    // A figure for people, never asserted (the machine may be loaded).
    console.log(`# round trip under 20 list loops: ${Date.now() - startedAt} ms (${lists} lists so far)`)
    assert.equal(clients.exitCode, null, 'every list answered 200')
  } finally {
    clients.kill('SIGKILL')
    await exited
  }
})
