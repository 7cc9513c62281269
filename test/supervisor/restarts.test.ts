/**
 * The supervisor keeping real processes running: a SIGKILLed instance comes
 * back after its backoff and its task completes once; a command that exits at
 * once ends in a crash loop (state `error`, supervisor idle) until a manual
 * restart; SIGTERM lets a running task finish; an instance unhealthy too long
 * is restarted; an HTTP-adapter instance is launched, checked and given work.
 */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import type { SupervisorStatus } from '../../src/contract/payloads/supervisor.js'
import { topicsFor } from '../../src/contract/topics.js'
import { CLI, ROOT, freePort, http, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { cpuTicks, spawnSupervisor, type SupervisorProcess } from '../helpers/supervisor.js'
import type { InstanceList, InstanceView } from '../../src/contract/http.js'

const { dir, cleanups } = testScope()
const AGENT = join(ROOT, 'dist/test/fixtures/slow-agent.js')
const FLAG = join(dir.path, 'flaky-may-start')
const BACKOFF_MS = 300
let sup: SupervisorProcess


async function instance(id: string): Promise<InstanceView> {
  const { body } = await http<InstanceList>(sup.httpUrl, 'GET', '/instances')
  const row = body.instances.find((i) => i.id === id)
  assert.ok(row, id)
  return row
}

async function finished(id: string): Promise<TaskRecord> {
  let task: TaskRecord | undefined
  await waitFor(async () => {
    task = (await http<TaskRecord>(sup.httpUrl, 'GET', `/tasks/${id}`)).body
    return ['completed', 'failed', 'dead'].includes(task.state)
  }, 60_000, `task ${id} to finish`)
  return task as TaskRecord
}

function doneLines(worker: string): string[] {
  const file = join(dir.path, `done-${worker}.log`)
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []
}

function slowAgent(id: string, type: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id, capabilities: [type], command: `node ${AGENT} ${id}`,
    env: { SLOW_AGENT_TYPE: type, SLOW_AGENT_DELAY_MS: '1500', SLOW_AGENT_LOG: join(dir.path, `done-${id}.log`) },
    ...extra,
  }
}

before(async () => {
  const pyPort = await freePort()
  const file = writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir.path, 'data') },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    health: { interval: '300ms', timeout: '300ms', missesBeforeOffline: 2 },
    tasks: { lease: '10s', retryBackoff: { base: '50ms', factor: 2, max: '500ms' } },
    supervisor: {
      stopTimeout: '3s', readyTimeout: '60s',
      restart: { base: `${BACKOFF_MS}ms`, factor: 2, max: '2s', jitter: 0, resetAfter: '30s' },
      crashLoop: { restarts: 3, window: '60s' },
    },
    instances: [
      slowAgent('worker', 'slow_job'),
      slowAgent('drainer', 'drain_job'),
      slowAgent('sick', 'sick_job', { healthUrl: `http://127.0.0.1:${await freePort()}/health`, restartUnhealthyAfter: '1s' }),
      { id: 'flaky', capabilities: ['flaky_job'], command: `test -f ${FLAG} && exec node ${AGENT} flaky || exit 3`, env: { SLOW_AGENT_TYPE: 'flaky_job' } },
      // The port reaches the program through the environment the supervisor sets.
      { id: 'pyworker', capabilities: ['word_count'], adapter: 'http', url: `http://127.0.0.1:${pyPort}`, port: pyPort, command: `python3 ${join(ROOT, 'test/fixtures/http_instance.py')} "$TRINITY_INSTANCE_PORT"` },
      { id: 'manual', capabilities: ['manual_job'] },
    ],
    routes: {
      slow_job: { targets: ['worker'] }, drain_job: { targets: ['drainer'] }, sick_job: { targets: ['sick'] },
      flaky_job: { targets: ['flaky'] }, word_count: { targets: ['pyworker'] }, manual_job: { targets: ['manual'] },
    },
  })
  sup = await spawnSupervisor(file, { cwd: ROOT })
  cleanups.push(() => sup.stop('SIGKILL'))
})

test('SIGKILL of an instance: restarted after its backoff, its in-flight task retried and completed once', async () => {
  await waitFor(async () => (await instance('worker')).state === 'online', 60_000, 'worker online')
  const { body } = await http<{ id: string }>(sup.httpUrl, 'POST', '/task', { type: 'slow_job', content: 'x' })
  await waitFor(() => sup.records.some((r) => r.msg === 'slow job started' && r['taskId'] === body.id), 60_000, 'task started')
  const killed = (await instance('worker')).process?.pid
  assert.ok(typeof killed === 'number')
  process.kill(killed, 'SIGKILL')

  const task = await finished(body.id)
  assert.equal(task.state, 'completed', `${JSON.stringify(task)}\n${sup.records.filter((r) => r['taskId'] === body.id || r.service === 'worker').map((r) => JSON.stringify(r)).join('\n')}`)
  const leg = task.assignments[0]
  assert.equal(leg?.attempts, 2)
  assert.notEqual((leg?.output as { pid: number }).pid, killed)
  assert.deepEqual(doneLines('worker').filter((l) => l.startsWith(body.id)).length, 1, 'the task ran to the end exactly once')

  const exit = sup.records.find((r) => r.service === 'worker' && r.msg === 'exited; restarting after backoff')
  assert.equal(exit?.['reason'], 'killed by SIGKILL')
  const restartedAt = sup.records.find((r) => r.service === 'worker' && r.msg === 'child starting' && r.childPid !== killed && Number(r['time']) > Number(exit?.['time']))
  assert.ok(restartedAt, 'a new run started')
  assert.ok(Number(restartedAt['time']) - Number(exit?.['time']) >= BACKOFF_MS - 5, `restarted ${Number(restartedAt['time']) - Number(exit?.['time'])} ms after the exit`)
  const row = await instance('worker')
  assert.deepEqual([row.state, row.process?.state, row.process?.restarts], ['online', 'running', 1])
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'status', '--url', sup.httpUrl])
  assert.match(stdout, new RegExp(`^worker\\s+worker\\s+online\\s+\\d+\\s+\\S+\\s+${row.process?.pid}\\s+1$`, 'm'), stdout)
})

test('a command that exits at once: crash loop, state error, supervisor idle; a manual restart works', async () => {
  await waitFor(async () => (await instance('flaky')).process?.state === 'error', 60_000, 'flaky in a crash loop')
  const row = await instance('flaky')
  assert.equal(row.state, 'error')
  assert.match(row.reason ?? '', /crash loop: 4 exits within 60000 ms \(last: exited with code 3\)/)
  assert.equal(row.process?.restarts, 3)

  // Shown on the bus too, retained.
  const client = await mqtt.connectAsync(sup.mqttUrl)
  cleanups.push(() => client.endAsync())
  const status = await new Promise<SupervisorStatus>((resolve) => {
    client.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()) as SupervisorStatus))
    void client.subscribeAsync(topicsFor().supervisorStatus)
  })
  assert.equal(status.children.find((c) => c.name === 'flaky')?.state, 'error')

  // No busy loop: no new runs, and the supervisor uses next to no CPU.
  const runs = sup.records.filter((r) => r.service === 'flaky' && r.msg === 'child starting').length
  const pid = sup.child.pid ?? 0
  const ticks = cpuTicks(pid)
  await new Promise((r) => setTimeout(r, 1000))
  const used = cpuTicks(pid) - ticks
  assert.ok(used <= 10, `supervisor used ${used} ticks (1/100 s) in 1 s`)
  assert.equal(sup.records.filter((r) => r.service === 'flaky' && r.msg === 'child starting').length, runs)

  writeFileSync(FLAG, '')
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'restart', 'flaky', '--url', sup.httpUrl])
  const answer = JSON.parse(stdout) as { action: string; pid: number; previousPid: number | null; state: string }
  assert.equal(answer.action, 'restart')
  assert.deepEqual([answer.state, answer.previousPid], ['running', null], 'a crash-looped instance had no process')
  await waitFor(async () => { const r = await instance('flaky'); return r.state === 'online' && r.process?.state === 'running' }, 60_000, 'flaky online after a manual restart')
  assert.equal((await instance('flaky')).process?.pid, answer.pid, 'the PID printed is the new run\'s')
})

test('trinity restart prints the new run\'s PID, not the old one; trinity pid prints the current one', async () => {
  await waitFor(async () => (await instance('worker')).process?.state === 'running', 60_000, 'worker running')
  const run = promisify(execFile)
  const old = Number((await run(process.execPath, [CLI, 'pid', 'worker', '--url', sup.httpUrl])).stdout.trim())
  assert.equal(old, (await instance('worker')).process?.pid)
  const { stdout } = await run(process.execPath, [CLI, 'restart', 'worker', '--url', sup.httpUrl])
  const answer = JSON.parse(stdout) as { pid: number; previousPid: number; state: string }
  assert.equal(answer.previousPid, old)
  assert.notEqual(answer.pid, old)
  assert.equal(answer.state, 'running')
  assert.equal((await instance('worker')).process?.pid, answer.pid)
  assert.equal(Number((await run(process.execPath, [CLI, 'pid', 'worker', '--url', sup.httpUrl])).stdout.trim()), answer.pid)
  const missing = await run(process.execPath, [CLI, 'pid', 'nobody', '--url', sup.httpUrl]).then(() => null, (err: { code: number; stderr: string }) => err)
  assert.equal(missing?.code, 1)
  assert.match(missing?.stderr ?? '', /no instance "nobody" \(known: .*worker.*\(TRINITY_ERR_INSTANCE_NOT_FOUND\)$/m)
})

test('restart requests the supervisor cannot honour are refused with a reason', async () => {
  const unknown = await http<{ error: { code: string } }>(sup.httpUrl, 'POST', '/instances/nobody/restart')
  assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'TRINITY_ERR_INSTANCE_NOT_FOUND'])
  const manual = await http<{ error: { code: string; message: string } }>(sup.httpUrl, 'POST', '/instances/manual/restart')
  assert.deepEqual([manual.status, manual.body.error.code], [409, 'TRINITY_ERR_NOT_SUPERVISED'])
  assert.match(manual.body.error.message, /manual has no command/)
})

test('SIGTERM during a task: the instance finishes it before exiting, and is started again', async () => {
  await waitFor(async () => (await instance('drainer')).state === 'online', 60_000, 'drainer online')
  const { body } = await http<{ id: string }>(sup.httpUrl, 'POST', '/task', { type: 'drain_job', content: 'x' })
  await waitFor(() => sup.records.some((r) => r.msg === 'slow job started' && r['taskId'] === body.id), 60_000, 'task started')
  const pid = (await instance('drainer')).process?.pid
  assert.ok(typeof pid === 'number')
  process.kill(pid, 'SIGTERM')
  const task = await finished(body.id)
  assert.equal(task.state, 'completed')
  assert.equal((task.assignments[0]?.output as { pid: number }).pid, pid, 'finished by the process that got SIGTERM')
  assert.equal(task.assignments[0]?.attempts, 1)
  assert.equal(doneLines('drainer').filter((l) => l.startsWith(body.id)).length, 1)
  await waitFor(async () => { const r = await instance('drainer'); return r.state === 'online' && r.process?.pid !== pid }, 60_000, 'drainer back')
  const exit = sup.records.find((r) => r.service === 'drainer' && r.msg === 'exited; restarting after backoff')
  assert.equal(exit?.['reason'], 'exited with code 0')
})

test('an instance whose health stays bad past restartUnhealthyAfter is restarted', async () => {
  await waitFor(() => sup.records.some((r) => r.service === 'sick' && r.msg === 'unhealthy too long: restarting'), 60_000, 'sick restarted')
  await waitFor(async () => ((await instance('sick')).process?.restarts ?? 0) >= 1, 60_000, 'restart counted')
  const record = sup.records.find((r) => r.service === 'sick' && r.msg === 'unhealthy too long: restarting')
  assert.ok(Number(record?.['unhealthyMs']) >= 1000)
})

test('an HTTP-adapter instance is launched by its command, health-checked and given tasks', async () => {
  // The coordinator's probe and the supervisor's readiness probe are separate: either may answer first.
  await waitFor(async () => { const r = await instance('pyworker'); return r.state === 'online' && r.checks > 0 && r.process?.state === 'running' }, 60_000, 'pyworker online, checked and running')
  const { body } = await http<{ id: string }>(sup.httpUrl, 'POST', '/task', { type: 'word_count', content: 'one two three' })
  const task = await finished(body.id)
  assert.equal(task.state, 'completed')
  assert.equal((task.assignments[0]?.output as { words: number }).words, 3)
  assert.ok(sup.records.some((r) => r.service === 'pyworker' && r.msg.startsWith('ready ')), 'the python process\'s own output is in the unified stream')
})
