/** An instance with `adapter: http` (a Python HTTP server, no MQTT) gets tasks by POST and health checks by GET. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import { ROOT, http, startTestHub, testConfig, waitFor, testScope } from './helpers/hub.js'

const { dir, cleanups } = testScope()

test('a plain HTTP instance is health-checked by GET and gets tasks by POST', async () => {
  const python = spawn('python3', [join(ROOT, 'test/fixtures/http_instance.py')], { stdio: ['ignore', 'pipe', 'inherit'] })
  cleanups.push(() => python.kill('SIGKILL'))
  let out = ''
  python.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await waitFor(() => /ready \d+/.test(out), 10_000, 'python instance')
  const port = Number(/ready (\d+)/.exec(out)?.[1])

  const hub = await startTestHub(await testConfig(dir.path, {
    instances: [{ id: 'analytics', adapter: 'http', url: `http://127.0.0.1:${port}` }],
    health: { interval: '200ms' },
    tasks: { maxAttempts: 2 },
  }))
  cleanups.push(() => hub.stop())
  await waitFor(() => hub.coordinator.registry.get('analytics')?.state === 'online', 5000, 'online by HTTP health')
  assert.ok((hub.coordinator.registry.get('analytics')?.view().responseMs.avg ?? -1) >= 0)

  const ok = await http<{ id: string; assigned: string[] }>(hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: 'one two three' })
  assert.deepEqual(ok.body.assigned, ['analytics'])
  let task: TaskRecord | undefined
  await waitFor(async () => { task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${ok.body.id}`)).body; return task.state === 'completed' }, 5000, 'completed')
  assert.deepEqual(task?.result, { words: 3, type: 'analyze_data', attempt: 1 })

  const bad = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: 'fail' })
  await waitFor(async () => { task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${bad.body.id}`)).body; return task.state === 'failed' }, 10_000, 'failed')
  assert.match(task?.error ?? '', /HTTP 500/)
  assert.equal(task?.assignments[0]?.attempts, 2)

  // An answer nesting 5,000 deep fails its task, named (issue #14): it is never stored, and the next task runs.
  const deep = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: 'deep' })
  await waitFor(async () => { task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${deep.body.id}`)).body; return task.state === 'failed' }, 10_000, 'the deep answer failed')
  assert.match(task?.error ?? '', /\/task: output: nests deeper than 64 levels \(limits\.maxDepth\)/)
  const after = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: 'four words right here' })
  await waitFor(async () => { task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${after.body.id}`)).body; return task.state === 'completed' }, 10_000, 'the next task')
  assert.deepEqual(task?.result, { words: 4, type: 'analyze_data', attempt: 1 })

  // The server goes away: health notices, and new work waits in the queue.
  python.kill('SIGKILL')
  await waitFor(() => hub.coordinator.registry.get('analytics')?.state === 'offline', 5000, 'offline')
  const waiting = await http<{ assigned: string[]; state: string }>(hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: 'later' })
  assert.deepEqual([waiting.body.state, waiting.body.assigned], ['queued', []])
})
