/**
 * The agent SDK at its seams: a malformed inbox frame is dropped with its
 * reason (the agent stays up and keeps working), and SIGTERM drains without
 * the SDK exiting its host.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { connectAgent, type TrinityError } from '../src/agent/index.js'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import { DEFAULT_CONCURRENCY } from '../src/contract/payloads/instance.js'
import { topicsFor } from '../src/contract/topics.js'
import { ROOT, http, waitFor } from './helpers/hub.js'
import { agentHub } from './helpers/agent-hub.js'

const HOST = join(ROOT, 'dist/test/fixtures/sdk-host.js')
const fixture = agentHub({ sturdy_job: { targets: ['sturdy'] }, host_job_a: { targets: ['host-a'] }, host_job_b: { targets: ['host-b'] } })
const { agents, dir, finished } = fixture

test('malformed inbox frames are dropped with their reason; the agent stays up and completes the next task', async () => {
  const errors: TrinityError[] = []
  const agent = await connectAgent({
    id: 'sturdy', url: fixture.hub.mqttUrl, handleSignals: false, onError: (err) => errors.push(err),
    handlers: { sturdy_job: (content) => ({ echoed: content }) },
  })
  agents.push(agent)
  await waitFor(() => fixture.hub.coordinator.registry.get('sturdy')?.state === 'online', 30_000, 'sturdy online')
  assert.equal(fixture.hub.coordinator.registry.get('sturdy')?.concurrency, DEFAULT_CONCURRENCY, 'the birth announces the one default')
  const raw = await mqtt.connectAsync(fixture.hub.mqttUrl, { reconnectPeriod: 0 })
  const bad = [
    '{"kind":"task"}',
    'not json',
    '{"kind":"bogus"}',
    '{"kind":"message","message":{"id":"m1"}}',
    '{"kind":"cancel","taskId":"t1"}',
    '{"kind":"task","task":{"id":"t2","type":"sturdy_job","content":1,"priority":"urgent"},"leaseToken":"x","leaseMs":1000,"attempt":1}',
  ]
  try {
    for (const payload of bad) await raw.publishAsync(topicsFor().instanceInbox('sturdy'), payload, { qos: 1 })
  } finally {
    await raw.endAsync()
  }
  await waitFor(() => errors.length === bad.length, 30_000, 'every bad frame reported')
  assert.deepEqual(errors.map((e) => e.code), bad.map(() => 'TRINITY_ERR_BAD_REQUEST'))
  const reasons = errors.map((e) => e.message.replace('bad request: sturdy: dropped an inbox frame: ', ''))
  assert.match(reasons[0] ?? '', /must have required properties task, leaseToken, leaseMs, attempt/)
  assert.match(reasons[1] ?? '', /^payload is not valid JSON/)
  assert.match(reasons[2] ?? '', /^kind: .*\(task, message, ping, cancel, input\)/)
  assert.match(reasons[3] ?? '', /^message: must have required properties/)
  assert.match(reasons[4] ?? '', /leaseToken/)
  assert.match(reasons[5] ?? '', /^task\.priority: /)
  // Still up, still working: a real task through the hub completes.
  const { body } = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'sturdy_job', content: 'after the noise' })
  const task = await finished(body.id)
  assert.deepEqual([task.state, task.result], ['completed', { echoed: 'after the noise' }])
  assert.equal(agent.running, 0)
})

/** Runs the host fixture, gives it a task, SIGTERMs it mid-task, releases the task once the hub sees it draining. */
async function sigtermMidTask(id: string, type: string, env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; task: TaskRecord; pid: number }> {
  const release = join(dir.path, `${id}.release`)
  const child = spawn(process.execPath, [HOST, id, type, release], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRINITY_MQTT_URL: fixture.hub.mqttUrl, ...env } })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  try {
    await waitFor(() => out.includes('host ready') && fixture.hub.coordinator.registry.get(id)?.state === 'online', 30_000, `${id} online:\n${out}`)
    const { body } = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type, content: null })
    await waitFor(() => out.includes('job started'), 30_000, `${id} job started`)
    child.kill('SIGTERM')
    await waitFor(() => fixture.hub.coordinator.registry.get(id)?.draining === true, 30_000, `${id} draining`)
    writeFileSync(release, '')
    const exit = await exited
    const task = await finished(body.id)
    return { ...exit, out, task, pid: child.pid ?? -1 }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

test('SIGTERM with no listener of the host: the SDK drains the running task, then the signal ends the process (no exit code of its own)', async () => {
  const run = await sigtermMidTask('host-a', 'host_job_a', {})
  assert.deepEqual([run.task.state, run.task.result], ['completed', { pid: run.pid }], run.out)
  assert.deepEqual([run.code, run.signal], [null, 'SIGTERM'], run.out)
})

test('SIGTERM with a listener of the host: the SDK drains, and the host decides what follows', async () => {
  const run = await sigtermMidTask('host-b', 'host_job_b', { SDK_HOST_LISTENS: '1' })
  assert.deepEqual([run.task.state, run.task.result], ['completed', { pid: run.pid }], run.out)
  assert.deepEqual([run.code, run.signal], [7, null], run.out)
  assert.match(run.out, /host decides after the drain/)
})
