/** The demo fleet: each seed task type does small real work; a demo instance process serves /health and takes tasks. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import type { InstanceStatus } from '../src/contract/payloads/instance.js'
import type { Message } from '../src/contract/payloads/message.js'
import { topicsFor } from '../src/contract/topics.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { analyzeData, buildProject, patternAnalysis, trackUser, writePlan } from '../src/fleet/work.js'
import { ROOT, http, startTestHub, testConfig, waitFor, writeConfig, tempDir, testScope } from './helpers/hub.js'

const { dir, cleanups } = testScope()

interface FleetProcess {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

/** `instance.js <id>` as a child process against `hub`; resolves once it logged `instance ready`. */
async function spawnInstance(hub: Hub, id: string, file: string, env: NodeJS.ProcessEnv = {}): Promise<FleetProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/fleet/instance.js'), id, '--config', file], {
    env: { ...process.env, TRINITY_MQTT_URL: hub.mqttUrl, TRINITY_URL: hub.httpUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  await waitFor(() => out.includes('instance ready') || child.exitCode !== null, 30_000, `${id} ready`)
  assert.equal(child.exitCode, null, out)
  return { child, output: () => out, exited }
}


/** The JSON log lines of a fleet process with this `msg`. */
function logLines(proc: FleetProcess, msg: string): Record<string, unknown>[] {
  return proc.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === msg)
}

test('the work functions compute real results', async () => {
  assert.deepEqual(analyzeData('values: 1, 2, 3, 4 and 10'), { count: 5, sum: 20, mean: 4, median: 3, min: 1, max: 10, stddev: Math.sqrt(10) })
  assert.equal(analyzeData('no numbers').count, 0)
  assert.deepEqual(patternAnalysis('the cat sat on the mat, the cat ran').words.slice(0, 2), [['the', 3], ['cat', 2]])
  assert.deepEqual(patternAnalysis('the cat sat on the mat, the cat ran').bigrams, [['the cat', 2]])
  assert.deepEqual(trackUser([{ user: 'u1', page: '/' }, { user: 'u2', page: '/' }, { user: 'u1', page: '/docs' }]), { events: 3, users: 2, pages: { '/': 2, '/docs': 1 }, perUser: { u1: 2, u2: 1 } })
  assert.match(writePlan('bug_fix', 'login loops').plan[1] ?? '', /^2\. Write a failing test: login loops$/)
  const built = await buildProject('Todo App', dir.path, 'abcdef1234')
  assert.deepEqual(built.files, ['README.md', 'package.json', 'src/index.js', 'test/index.test.js'])
  assert.ok(existsSync(join(built.path, 'src/index.js')))
})

test('a demo instance process serves /health, joins the hub and does its work', async () => {
  const hubDir = tempDir()
  cleanups.push(() => hubDir.remove())
  const base = { instances: [{ id: 'araya', role: 'araya', capabilities: ['pattern_analysis'] }], routes: { pattern_analysis: { targets: ['araya'] } } }
  const hub = await startTestHub(await testConfig(hubDir.path, base))
  cleanups.push(() => hub.stop())
  const file = writeConfig(hubDir.path, await testConfig(hubDir.path, { ...base, log: { level: 'info' } }), 'fleet.yaml')
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/fleet/instance.js'), 'araya', '--config', file], {
    env: { ...process.env, TRINITY_MQTT_URL: hub.mqttUrl, TRINITY_INSTANCE_PORT: '0', TRINITY_URL: hub.httpUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  cleanups.push(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  await waitFor(() => out.includes('instance ready'), 30_000, 'instance ready')
  const port = (JSON.parse(out.split('\n').find((l) => l.includes('instance ready')) ?? '{}') as { port: number }).port
  const health = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json() as Promise<{ status: string; instance: string }>)
  assert.deepEqual([health.status, health.instance], ['ok', 'araya'])
  await waitFor(() => hub.coordinator.registry.get('araya')?.capabilities.includes('pattern_analysis') === true, 30_000, 'araya online')
  const { body } = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'pattern_analysis', content: 'red fish blue fish red fish' })
  let task: TaskRecord | undefined
  await waitFor(async () => { task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${body.id}`)).body; return task.state === 'completed' }, 30_000, 'completed')
  assert.deepEqual((task?.result as { words: [string, number][] }).words, [['fish', 3], ['red', 2]])
  // SIGTERM drains and exits cleanly.
  child.kill('SIGTERM')
  const code = await new Promise((resolve) => child.once('exit', resolve))
  assert.equal(code, 0)
})

test('a taken port is a clear error naming the port and the instance, not a stack trace', async () => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => blocker.close())
  const taken = (blocker.address() as { port: number }).port
  const file = writeConfig(dir.path, await testConfig(dir.path, { instances: [{ id: 'builder', port: taken, capabilities: ['build_project'] }] }), 'taken.yaml')
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/fleet/instance.js'), 'builder', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise((resolve) => child.once('exit', resolve))
  assert.equal(code, 1)
  assert.equal(err.trim(), `builder: port ${taken} is already in use (set instances[].port, or stop what holds it)`)
})

test('every birth of a demo instance carries its capabilities, the first after a restart too', async () => {
  const hubDir = tempDir()
  cleanups.push(() => hubDir.remove())
  const capabilities = ['pattern_analysis', 'build_project', 'bug_fix', 'deployment', 'general']
  const base = { instances: [{ id: 'c1', role: 'c1', capabilities }] }
  const hub = await startTestHub(await testConfig(hubDir.path, base))
  cleanups.push(() => hub.stop())
  const file = writeConfig(hubDir.path, await testConfig(hubDir.path, { ...base, log: { level: 'info' } }), 'fleet.yaml')
  // A plain MQTT client sees every status c1 publishes, live, from before its first start.
  const statuses: InstanceStatus[] = []
  const watcher = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => watcher.endAsync())
  watcher.on('message', (_t, payload) => { if (payload.length > 0) statuses.push(JSON.parse(payload.toString('utf8')) as InstanceStatus) })
  await watcher.subscribeAsync(topicsFor().instanceStatus('c1'), { qos: 1 })

  const first = await spawnInstance(hub, 'c1', file)
  const firstPid = first.child.pid
  await waitFor(() => statuses.some((s) => s.pid === firstPid), 30_000, 'the first birth')
  first.child.kill('SIGKILL')
  await first.exited
  await waitFor(() => statuses.some((s) => s.state === 'offline'), 30_000, 'the Will')
  const second = await spawnInstance(hub, 'c1', file)
  const secondPid = second.child.pid
  await waitFor(() => statuses.some((s) => s.pid === secondPid), 30_000, 'the birth after the restart')
  const session = statuses.find((s) => s.pid === secondPid)?.session
  await waitFor(() => hub.coordinator.registry.get('c1')?.session === session, 30_000, 'the hub sees the new session')

  const births = statuses.filter((s) => s.state === 'online')
  for (const pid of [firstPid, secondPid]) {
    const firstBirth = births.find((s) => s.pid === pid)
    assert.deepEqual([...(firstBirth?.capabilities ?? [])].sort(), [...capabilities].sort(), `the first birth of pid ${pid}: ${JSON.stringify(firstBirth)}`)
  }
  for (const birth of births) assert.deepEqual([...(birth.capabilities ?? [])].sort(), [...capabilities].sort(), JSON.stringify(birth))
  assert.deepEqual([...(hub.coordinator.registry.get('c1')?.capabilities ?? [])].sort(), [...capabilities].sort())
  // The retained birth a newcomer gets is the new process's, with everything.
  const late = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => late.endAsync())
  const retained = new Promise<InstanceStatus>((resolve) => late.on('message', (_t, payload, packet) => { if (packet.retain) resolve(JSON.parse(payload.toString('utf8')) as InstanceStatus) }))
  await late.subscribeAsync(topicsFor().instanceStatus('c1'), { qos: 1 })
  const kept = await retained
  assert.equal(kept.pid, secondPid)
  assert.deepEqual([...(kept.capabilities ?? [])].sort(), [...capabilities].sort())
})

test('demo instances log every message; C1 answers each once, never an answer and never itself', async () => {
  const hubDir = tempDir()
  cleanups.push(() => hubDir.remove())
  const base = {
    instances: [
      { id: 'c1', name: 'C1 Mechanic', role: 'c1', capabilities: ['general'] },
      { id: 'c2', name: 'C2 Mechanic', role: 'c2', capabilities: ['general'] },
      { id: 'araya', role: 'araya', capabilities: ['pattern_analysis'] },
      { id: 'scribe', capabilities: [] },
    ],
  }
  const hub = await startTestHub(await testConfig(hubDir.path, base))
  cleanups.push(() => hub.stop())
  const file = writeConfig(hubDir.path, await testConfig(hubDir.path, { ...base, log: { level: 'info' } }), 'fleet.yaml')
  const [c1, c2, araya] = await Promise.all(['c1', 'c2', 'araya'].map((id) => spawnInstance(hub, id, file))) as [FleetProcess, FleetProcess, FleetProcess]
  const scribe = await TestInstance.start({ url: hub.mqttUrl, id: 'scribe' })
  cleanups.push(() => scribe.close())
  await waitFor(() => ['c1', 'c2', 'araya', 'scribe'].every((id) => hub.coordinator.registry.get(id)?.connected === true), 30_000, 'all connected')
  const send = async (from: string, to: string, message: string): Promise<Message> => {
    const sent = await http<Message>(hub.httpUrl, 'POST', '/send', { from, to, message })
    assert.equal(sent.status, 202, JSON.stringify(sent.body))
    return sent.body
  }
  const received = (proc: FleetProcess, id: string): Record<string, unknown> | undefined => logLines(proc, 'message received').find((l) => l['id'] === id)
  const replies = (to: string): Message[] => (scribe.messages as Message[]).filter((m) => m.to === to)

  // A message to c1 is logged with its sender and text, and answered to the sender.
  const hello = await send('scribe', 'c1', 'hello c1')
  await waitFor(() => received(c1, hello.id) !== undefined, 30_000, 'c1 logs the message')
  assert.deepEqual([received(c1, hello.id)?.['from'], received(c1, hello.id)?.['text']], ['scribe', 'hello c1'])
  await waitFor(() => replies('scribe').length === 1, 30_000, 'the answer in scribe\'s inbox')
  const answer = replies('scribe')[0]
  assert.deepEqual([answer?.from, answer?.replyTo, answer?.message], ['c1', hello.id, 'C1 Mechanic got your message "hello c1"'])

  // Araya logs a message too and does not answer.
  const toAraya = await send('scribe', 'araya', 'hello araya')
  await waitFor(() => received(araya, toAraya.id) !== undefined, 30_000, 'araya logs the message')
  // c1 → c2: c2 answers; c1 logs the answer and does not answer it. A note to self goes unanswered.
  const between = await send('c1', 'c2', 'hi c2')
  await waitFor(() => logLines(c1, 'message received').some((l) => l['replyTo'] === between.id && l['from'] === 'c2'), 30_000, 'c2\'s answer reaches c1')
  const self = await send('c1', 'c1', 'note to self')
  await waitFor(() => received(c1, self.id) !== undefined, 30_000, 'c1 logs its note to self')
  // A last message to c1: its answer comes after any answer c1 could have given to the ones above.
  const last = await send('scribe', 'c1', 'one more')
  await waitFor(() => replies('scribe').length === 2, 30_000, 'the answer to the last message')
  assert.equal(replies('scribe')[1]?.replyTo, last.id)

  const log = (await http<{ messages: Message[] }>(hub.httpUrl, 'GET', '/messages?limit=100')).body.messages
  const answers = log.filter((m) => m.replyTo !== undefined).map((m) => [m.from, m.to, m.replyTo])
  assert.deepEqual(answers, [['c1', 'scribe', hello.id], ['c2', 'c1', between.id], ['c1', 'scribe', last.id]])
  assert.equal(c2.child.exitCode, null)
})

test('track_user reads a plain-text form, and content it cannot read fails saying what it expects', () => {
  assert.deepEqual(trackUser('alice /pricing\nbob /\n\n  alice   /docs  \n'), { events: 3, users: 2, pages: { '/pricing': 1, '/': 1, '/docs': 1 }, perUser: { alice: 2, bob: 1 } })
  assert.deepEqual(trackUser('[{"user":"u1","page":"/"}]').events, 1, 'JSON in a string still parses')
  assert.deepEqual(trackUser([]).events, 0, 'an empty list is no events')
  const expects = 'expected a JSON list of {"user", "page"} events, or plain text with one "<user> <page>" visit per line'
  assert.throws(() => trackUser('alice /home\nbob visited /docs'), { message: `track_user: line 2 is "bob visited /docs"; ${expects}` })
  assert.throws(() => trackUser('someone looked around'), { message: `track_user: line 1 is "someone looked around"; ${expects}` })
  assert.throws(() => trackUser('   \n'), { message: `track_user: the content is empty; ${expects}` })
  assert.throws(() => trackUser(42), { message: `track_user: content is 42; ${expects}` })
  assert.throws(() => trackUser([{ user: 'a', page: '/' }, 'b /x']), { message: `track_user: event 1 is "b /x"; ${expects}` })
})

test('build_project fanned out to builder and c1 writes two folders, each in its instance\'s own workspace', async () => {
  const hubDir = tempDir()
  cleanups.push(() => hubDir.remove())
  const base = {
    instances: [
      { id: 'builder', role: 'builder', capabilities: ['build_project'] },
      { id: 'c1', role: 'c1', capabilities: ['build_project', 'track_user'] },
    ],
    routes: { build_project: { targets: ['builder', 'c1'], strategy: 'all' }, track_user: { targets: ['c1'] } },
  }
  const hub = await startTestHub(await testConfig(hubDir.path, base))
  cleanups.push(() => hub.stop())
  const file = writeConfig(hubDir.path, await testConfig(hubDir.path, { ...base, log: { level: 'info' } }), 'fleet.yaml')
  const other = join(hubDir.path, 'elsewhere')
  await Promise.all([spawnInstance(hub, 'builder', file, { TRINITY_WORKSPACE: undefined }), spawnInstance(hub, 'c1', file, { TRINITY_WORKSPACE: other })])
  await waitFor(() => ['builder', 'c1'].every((id) => hub.coordinator.registry.get(id)?.state === 'online'), 30_000, 'both online')

  const finished = async (id: string): Promise<TaskRecord> => {
    let task: TaskRecord | undefined
    await waitFor(async () => { task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body; return ['completed', 'failed', 'dead'].includes(task.state) }, 30_000, `task ${id}`)
    return task as TaskRecord
  }
  const built = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'build_project', content: 'Todo App' })
  const task = await finished(built.body.id)
  assert.equal(task.state, 'completed', JSON.stringify(task))
  const paths = Object.fromEntries<string>(task.assignments.map((a) => [a.instance ?? '?', (a.output as { path: string }).path]))
  // builder: the default, under hub.dataDir; c1: under its TRINITY_WORKSPACE. Each in a folder named for it.
  assert.equal(paths['builder'], join(hubDir.path, 'workspace', 'builder', `todo-app-${built.body.id.slice(0, 8)}`))
  assert.equal(paths['c1'], join(other, 'c1', `todo-app-${built.body.id.slice(0, 8)}`))
  for (const path of Object.values(paths)) assert.equal(readFileSync(join(path, 'README.md'), 'utf8'), '# todo-app\n\nTodo App\n')

  const plain = await finished((await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'track_user', content: 'alice /pricing\nbob /pricing' })).body.id)
  assert.equal(plain.state, 'completed', JSON.stringify(plain))
  assert.deepEqual(plain.result, { events: 2, users: 2, pages: { '/pricing': 2 }, perUser: { alice: 1, bob: 1 } })
  const unreadable = await finished((await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'track_user', content: 'somebody came by' })).body.id)
  assert.equal(unreadable.state, 'failed')
  assert.match(unreadable.error ?? '', /^c1: track_user: line 1 is "somebody came by"; expected a JSON list of \{"user", "page"\} events, or plain text with one "<user> <page>" visit per line$/)
})
