/**
 * `adapter: exec`: any command-line program serves a route (issue #11). Real
 * processes throughout: python3 and /bin/sh run by the hub once per task, their
 * process groups checked in /proc after cancel, a timeout and hub stop, and the
 * real `trinity` CLI refusing a config whose program does not exist.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import { topicsFor } from '../src/contract/topics.js'
import type { InstanceView } from '../src/contract/http.js'
import { CLI, ROOT, http, startTestHub, testConfig, testScope, waitFor, writeConfig } from './helpers/hub.js'
import { alive, spawnSupervisor, waitGone } from './helpers/supervisor.js'

const { dir, cleanups } = testScope()
const PY_TASK = join(ROOT, 'test/fixtures/exec_task.py')
const PY_STUBBORN = join(ROOT, 'test/fixtures/exec_stubborn.py')
/** A shell command that starts a grandchild and names both pids in `$1/<task id>.pids`, then waits. */
const SLEEPER = 'sleep 600 & echo "$$ $!" > "$1/$TRINITY_TASK_ID.tmp" && mv "$1/$TRINITY_TASK_ID.tmp" "$1/$TRINITY_TASK_ID.pids"; wait'

type Hub = Awaited<ReturnType<typeof startTestHub>>

/** A hub in this process; a lease long enough that no command of a loaded machine outlives it unless a test says so. */
async function hubWith(overrides: Record<string, unknown>): Promise<Hub> {
  const data = join(dir.path, `hub-${Math.random().toString(36).slice(2)}`)
  const tasks = { lease: '60s', ...(overrides['tasks'] as Record<string, unknown> | undefined) }
  const hub = await startTestHub(await testConfig(data, { ...overrides, tasks }))
  cleanups.push(() => hub.stop())
  return hub
}

async function submit(hub: Hub, type: string, content: unknown): Promise<string> {
  const { status, body } = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type, content })
  assert.equal(status, 202)
  return body.id
}

async function settled(hub: Hub, id: string, state: TaskRecord['state']): Promise<TaskRecord> {
  let task: TaskRecord | undefined
  await waitFor(async () => { task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body; return task.state === state }, 60_000, `task ${id} ${state} (last: ${task?.state ?? '?'})`)
  return task as TaskRecord
}

async function pidsOf(scratch: string, taskId: string): Promise<number[]> {
  const file = join(scratch, `${taskId}.pids`)
  await waitFor(() => existsSync(file), 60_000, `${file}`)
  const pids = readFileSync(file, 'utf8').trim().split(' ').map(Number)
  assert.equal(pids.length, 2)
  assert.ok(pids.every(alive), 'the command and its grandchild run')
  return pids
}

function scratchDir(name: string): string {
  const path = join(dir.path, name)
  mkdirSync(path, { recursive: true })
  return path
}

test('a Python script serves a route with JSON, a shell command another with text', async () => {
  const hub = await hubWith({
    instances: [
      { id: 'py', adapter: 'exec', command: 'python3', args: [PY_TASK], capabilities: ['analyze_data'] },
      // stdin is the task as JSON: the one-liner takes the content from the environment.
      { id: 'upper', adapter: 'exec', shell: true, command: 'printf "%s\\n" "$TRINITY_TASK_CONTENT" | tr a-z A-Z', concurrency: 2 },
    ],
    routes: { analyze_data: { targets: ['py'] }, shout: { targets: ['upper'] } },
  })
  // The hub's own runner: online from the start, nothing for the supervisor to run.
  const { body } = await http<{ instances: InstanceView[] }>(hub.httpUrl, 'GET', '/instances')
  const py = body.instances.find((i) => i.id === 'py')
  assert.deepEqual([py?.adapter, py?.state, py?.connected, py?.process], ['exec', 'online', true, null])
  // Only the hub speaks for its runner: a Will-like status for its id on the bus changes nothing.
  const impostor = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => impostor.endAsync())
  await impostor.publishAsync(topicsFor().instanceStatus('py'), JSON.stringify({ state: 'offline', session: Date.now() }), { qos: 1 })
  // Submitted after it by the same client, so the hub has read the status once this task exists.
  const viaBus = randomUUID()
  await impostor.publishAsync(topicsFor().taskSubmit, JSON.stringify({ id: viaBus, type: 'analyze_data', content: 'after the status' }), { qos: 1 })
  assert.deepEqual((await settled(hub, viaBus, 'completed')).result, { words: 3, type: 'analyze_data', attempt: 1, priority: 'normal', envMatches: true, instance: 'py' })

  assert.equal(hub.coordinator.registry.get('py')?.state, 'online')
  const counted = await settled(hub, await submit(hub, 'analyze_data', 'one two three'), 'completed')
  assert.deepEqual(counted.result, { words: 3, type: 'analyze_data', attempt: 1, priority: 'normal', envMatches: true, instance: 'py' })

  const shouted = await settled(hub, await submit(hub, 'shout', 'hello from exec'), 'completed')
  assert.equal(shouted.result, 'HELLO FROM EXEC')
  // Text that happens to be JSON is JSON.
  const numbers = await settled(hub, await submit(hub, 'shout', '[1, 2]'), 'completed')
  assert.deepEqual(numbers.result, [1, 2])
})

test('a failing command fails its task after its attempts, with its stderr lines and exit code', async () => {
  const hub = await hubWith({
    instances: [
      { id: 'broken', adapter: 'exec', shell: true, command: 'echo "reading the input" >&2; echo "boom on attempt $TRINITY_TASK_ATTEMPT" >&2; exit 3' },
      { id: 'homeless', adapter: 'exec', command: 'python3', cwd: join(dir.path, 'no-such-dir') },
    ],
    routes: { explode: { targets: ['broken'] }, wander: { targets: ['homeless'] } },
    tasks: { maxAttempts: 2 },
  })
  const task = await settled(hub, await submit(hub, 'explode', 'x'), 'failed')
  assert.equal(task.assignments[0]?.attempts, 2)
  assert.match(task.error ?? '', /^broken: sh -c ".*" exited with code 3: reading the input\nboom on attempt 2$/)
  // A command that cannot even start (its cwd is gone) fails the same way, saying why.
  const homeless = await settled(hub, await submit(hub, 'wander', 'x'), 'failed')
  assert.match(homeless.error ?? '', /^homeless: could not start "python3": spawn python3 ENOENT/)
})

test('stdout over limits.maxPayload or nesting deeper than limits.maxDepth fails the task', async () => {
  const hub = await hubWith({
    instances: [
      { id: 'flood', adapter: 'exec', command: 'head', args: ['-c', '4096', '/dev/zero'] },
      { id: 'deep', adapter: 'exec', command: 'python3', args: ['-c', 'print("[" * 100 + "]" * 100)'] },
    ],
    routes: { flood: { targets: ['flood'] }, deep: { targets: ['deep'] } },
    tasks: { maxAttempts: 1 },
    limits: { maxPayload: 2048, maxDepth: 64 },
  })
  const flooded = await settled(hub, await submit(hub, 'flood', 'x'), 'failed')
  assert.match(flooded.error ?? '', /^flood: "head": stdout is over limits\.maxPayload, 2 KiB \(2048 bytes\)$/)
  const deep = await settled(hub, await submit(hub, 'deep', 'x'), 'failed')
  assert.match(deep.error ?? '', /the stdout of "python3": output: nests deeper than 64 levels \(limits\.maxDepth\)/)
})

test('cancel kills the process group: the command and its grandchild', async () => {
  const scratch = scratchDir('cancel')
  const hub = await hubWith({
    instances: [{ id: 'sleeper', adapter: 'exec', shell: true, command: SLEEPER, args: [scratch] }],
    routes: { nap: { targets: ['sleeper'] } },
  })
  const id = await submit(hub, 'nap', 'x')
  const pids = await pidsOf(scratch, id)
  await settled(hub, id, 'running')
  assert.equal((await http(hub.httpUrl, 'POST', `/tasks/${id}/cancel`)).status, 200)
  await waitGone(pids, 60_000)
  assert.equal((await settled(hub, id, 'cancelled')).state, 'cancelled')
})

test('what a command leaves running in its group when it exits is killed, even holding its stdout', async () => {
  const hub = await hubWith({
    instances: [{ id: 'leaver', adapter: 'exec', shell: true, command: 'sleep 600 & echo $!' }],
    routes: { leave: { targets: ['leaver'] } },
  })
  const task = await settled(hub, await submit(hub, 'leave', 'x'), 'completed')
  assert.equal(typeof task.result, 'number')
  await waitGone([task.result as number], 60_000)
})

test('a command that ignores SIGTERM is killed by SIGKILL after its stopTimeout', async () => {
  const scratch = scratchDir('stubborn')
  const hub = await hubWith({
    instances: [{ id: 'stubborn', adapter: 'exec', command: 'python3', args: [PY_STUBBORN, scratch], stopTimeout: '1s' }],
    routes: { hold: { targets: ['stubborn'] } },
  })
  const id = await submit(hub, 'hold', 'x')
  const pids = await pidsOf(scratch, id)
  await http(hub.httpUrl, 'POST', `/tasks/${id}/cancel`)
  // It got the SIGTERM and lived on (its handler wrote this); only SIGKILL ends it.
  await waitFor(() => existsSync(join(scratch, `${id}.term`)), 60_000, 'the SIGTERM to be noted')
  await waitGone(pids, 60_000)
  assert.equal((await settled(hub, id, 'cancelled')).state, 'cancelled')
})

test('a command still running when its lease runs out fails with the reason, and leaves no process', async () => {
  const scratch = scratchDir('timeout')
  const hub = await hubWith({
    instances: [{ id: 'slow', adapter: 'exec', shell: true, command: SLEEPER, args: [scratch], stopTimeout: '1s' }],
    routes: { nap: { targets: ['slow'] } },
    tasks: { lease: '8s', maxAttempts: 1 },
  })
  const id = await submit(hub, 'nap', 'x')
  const pids = await pidsOf(scratch, id)
  const task = await settled(hub, id, 'failed')
  assert.match(task.error ?? '', /no result within 8000 ms \(tasks\.lease\)/)
  await waitGone(pids, 60_000)
})

test('hub stop signals the running commands and waits for them: no orphans', async () => {
  const scratch = scratchDir('stop')
  const data = join(dir.path, 'hub-stop')
  const hub = await startTestHub(await testConfig(data, {
    instances: [{ id: 'stubborn', adapter: 'exec', command: 'python3', args: [PY_STUBBORN, scratch], stopTimeout: '3s', concurrency: 2 }],
    routes: { hold: { targets: ['stubborn'] } },
    tasks: { lease: '60s' },
  }))
  let stopped = false
  cleanups.push(() => (stopped ? undefined : hub.stop()))
  const ids = [await submit(hub, 'hold', 'a'), await submit(hub, 'hold', 'b')]
  const runs = await Promise.all(ids.map((id) => pidsOf(scratch, id)))
  await hub.stop()
  stopped = true
  // The commands are the hub's children: stop returned after their exit, which took SIGKILL (each noted its SIGTERM and lived on).
  for (const id of ids) assert.ok(existsSync(join(scratch, `${id}.term`)), `task ${id} got SIGTERM first`)
  assert.deepEqual(runs.map(([command]) => command ?? 0).filter(alive), [], 'the commands are gone once stop has returned')
  // Their grandchildren, which ignore SIGTERM too, went with the group's SIGKILL.
  await waitGone(runs.map(([, grandchild]) => grandchild ?? 0), 60_000)
})

test('trinity start launches nothing for an exec instance; the hub runs it per task and logs its stderr', async () => {
  const file = writeConfig(dir.path, await testConfig(join(dir.path, 'supervised'), {
    instances: [{ id: 'counter', adapter: 'exec', command: 'python3', args: [PY_TASK] }],
    routes: { analyze_data: { targets: ['counter'] } },
    tasks: { lease: '60s' },
  }), 'supervised.yaml')
  const supervisor = await spawnSupervisor(file)
  cleanups.push(() => supervisor.stop())
  assert.deepEqual(supervisor.ready.children.map((c) => c.name), ['hub'])
  const { body } = await http<{ id: string }>(supervisor.httpUrl, 'POST', '/task', { type: 'analyze_data', content: 'four words right here' })
  let task: TaskRecord | undefined
  await waitFor(async () => { task = (await http<TaskRecord>(supervisor.httpUrl, 'GET', `/tasks/${body.id}`)).body; return task.state === 'completed' }, 60_000, 'completed')
  assert.deepEqual(task?.result, { words: 4, type: 'analyze_data', attempt: 1, priority: 'normal', envMatches: true, instance: 'counter' })
  const restart = await http<{ error: { code: string; message: string } }>(supervisor.httpUrl, 'POST', '/instances/counter/restart')
  assert.equal(restart.status, 409)
  assert.match(restart.body.error.message, /counter is run by the hub once per task \(adapter: exec\); there is no process to restart/)
  // The script's stderr line, in the one log stream, with the instance and the task.
  await waitFor(() => supervisor.records.some((r) => r.msg === 'counting words' && r.instance === 'counter' && r['taskId'] === body.id && r['stream'] === 'stderr'), 60_000, 'the stderr line in the log')
})

test('config: exec without a command, or with a program that does not exist, exits 2 naming the field', () => {
  const noCommand = writeConfig(dir.path, { instances: [{ id: 'ghost', adapter: 'exec' }] }, 'no-command.yaml')
  const first = spawnSync(process.execPath, [CLI, 'hub', '--config', noCommand], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(first.status, 2)
  assert.match(first.stderr, /no-command\.yaml:2:5: instances\[0\]\.command: expected the program to run for each task when adapter is "exec"/)

  const missing = writeConfig(dir.path, {
    instances: [{ id: 'ok', adapter: 'exec', shell: true, command: 'no-such-program-trinity | tr a b' }, { id: 'ghost', adapter: 'exec', command: 'no-such-program-trinity' }],
  }, 'missing.yaml')
  for (const command of ['hub', 'start']) {
    const run = spawnSync(process.execPath, [CLI, command, '--config', missing], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(run.status, 2, `trinity ${command}: ${run.stderr}`)
    // The shell command is the shell's business: only the direct one is checked.
    assert.equal(run.stderr, `${missing}:8:14: instances[1].command: expected an executable program for exec instance "ghost", "no-such-program-trinity" is not one on PATH\n`)
  }

  const relative = writeConfig(dir.path, { instances: [{ id: 'local', adapter: 'exec', command: './nope.py', cwd: dir.path }] }, 'relative.yaml')
  const run = spawnSync(process.execPath, [CLI, 'hub', '--config', relative], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(run.status, 2)
  assert.match(run.stderr, new RegExp(`instances\\[0\\]\\.command: expected an executable program for exec instance "local", "\\./nope\\.py" is not one in ${dir.path.replaceAll('/', '\\/')}`))

  const stray = writeConfig(dir.path, { instances: [{ id: 'mq', command: 'node x.js', args: ['a'] }] }, 'stray.yaml')
  const strayRun = spawnSync(process.execPath, [CLI, 'hub', '--config', stray], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(strayRun.status, 2)
  assert.match(strayRun.stderr, /instances\[0\]\.args: expected only with adapter "exec"/)
})
