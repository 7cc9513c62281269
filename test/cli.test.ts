/**
 * The `trinity` CLI's client commands, run as real child processes
 * (`node dist/src/cli/main.js …`, asynchronously: the hub they talk to runs in
 * this process and needs its event loop) against a hub found by `--url`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { HubSummary, InstanceView } from '../src/contract/http.js'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import type { Message } from '../src/contract/payloads/message.js'
import { topicsFor } from '../src/contract/topics.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { CLI, freePort, http, startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'

const dir = tempDir()
const children = new Set<ChildProcess>()
let hub: Hub
let c1: TestInstance
// The default prefix: `tail --mqtt` without a config file listens under `trinity/`.
const topics = topicsFor()

before(async () => {
  hub = await startTestHub(await testConfig(dir.path))
  c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', capabilities: ['general'] })
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 5000, 'c1 online')
})
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await c1?.close()
  await hub?.stop()
  dir.remove()
})

/** The CLI's environment: no hub address but the one a test passes. */
function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env['TRINITY_URL']
  delete env['TRINITY_CONFIG']
  return env
}

interface Running {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** `trinity …` as a child process, cwd in a temp dir (no config file to find). */
function start(args: string[]): Running {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir.path, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => { children.delete(child); resolve({ code, signal }) })
  })
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

/** Runs `trinity …` to the end (killed if it is still running after 60 s). */
async function run(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const running = start(args)
  const guard = setTimeout(() => running.child.kill('SIGKILL'), 60_000)
  const { code, signal } = await running.exited
  clearTimeout(guard)
  return { code, signal, stdout: running.stdout(), stderr: running.stderr() }
}

const task = async (id: string): Promise<TaskRecord> => (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body

test('submit --wait prints the finished task with its result; without --wait, the accepted id', async () => {
  const waited = await run(['submit', 'general', 'hello', '--priority', 'high', '--wait', '--url', hub.httpUrl])
  assert.equal(waited.code, 0, JSON.stringify(waited))
  const done = JSON.parse(waited.stdout) as { id: string; state: string; result: unknown }
  assert.equal(done.state, 'completed')
  assert.deepEqual(done.result, { by: 'c1' })
  const record = await task(done.id)
  assert.equal(record.state, 'completed')
  assert.equal(record.priority, 'high')
  assert.equal(record.content, 'hello')
  assert.deepEqual(record.result, { by: 'c1' })

  const accepted = await run(['submit', 'general', '{"n": 42}', '--url', hub.httpUrl])
  assert.equal(accepted.code, 0, JSON.stringify(accepted))
  const body = JSON.parse(accepted.stdout) as { id: string; state: string; assigned: string[] }
  assert.equal(typeof body.id, 'string')
  assert.notEqual(body.id, done.id)
  assert.deepEqual(body.assigned, ['c1'])
  await waitFor(async () => (await task(body.id)).state === 'completed', 10_000, 'the second task to complete')
  const second = await task(body.id)
  assert.deepEqual(second.content, { n: 42 }, 'content that parses as JSON is sent as JSON')
  assert.equal(second.priority, 'normal')
})

test('send logs a message that GET /messages lists', async () => {
  // To c1, the instance this hub knows (a message to an unknown id is refused with 404).
  const sent = await run(['send', 'araya', 'c1', 'hi', '--url', hub.httpUrl])
  assert.equal(sent.code, 0, JSON.stringify(sent))
  const message = JSON.parse(sent.stdout) as Message
  assert.equal(message.from, 'araya')
  assert.equal(message.to, 'c1')
  assert.equal(message.message, 'hi')
  const log = await http<{ messages: Message[] }>(hub.httpUrl, 'GET', '/messages?limit=50')
  assert.equal(log.status, 200)
  const logged = log.body.messages.find((m) => m.id === message.id)
  assert.ok(logged !== undefined, JSON.stringify(log.body))
  assert.equal(logged.from, 'araya')
  assert.equal(logged.to, 'c1')
  assert.equal(logged.message, 'hi')
})

test('status prints the instance table; --json prints parseable JSON', async () => {
  const table = await run(['status', '--url', hub.httpUrl])
  assert.equal(table.code, 0, JSON.stringify(table))
  assert.match(table.stdout, /^INSTANCE\s+ROLE\s+STATE\s+IN FLIGHT\s+AVG MS\s+PID\s+RESTARTS$/m)
  const state = hub.coordinator.registry.get('c1')?.state
  assert.equal(state, 'online')
  assert.match(table.stdout, /^c1\s+c1\s+online\s+\d+\s+\S+\s+-\s+-$/m, table.stdout)
  assert.match(table.stdout, new RegExp(`^hub ${hub.httpUrl.replaceAll('.', '\\.')}\\s+broker embedded \\(connected\\)`, 'm'))

  const json = await run(['status', '--json', '--url', hub.httpUrl])
  assert.equal(json.code, 0, JSON.stringify(json))
  const parsed = JSON.parse(json.stdout) as { hub: HubSummary; instances: InstanceView[] }
  assert.equal(parsed.hub.broker.connected, true)
  assert.equal(typeof parsed.hub.tasks['completed'], 'number')
  assert.deepEqual([parsed.hub.instances.total, parsed.hub.instances.online], [1, 1], 'the hub summary keeps its instance counts')
  assert.ok(Array.isArray(parsed.instances), JSON.stringify(parsed))
  assert.equal(parsed.instances.find((i) => i.id === 'c1')?.state, 'online')
})

test('tail prints `topic payload` lines for bus traffic and exits on SIGINT', async () => {
  const tail = start(['tail', '--mqtt', hub.mqttUrl])
  const lines = (): string[] => tail.stdout().split('\n').filter((l) => l !== '')
  // The first line (retained hub stats or health) means it is subscribed.
  await waitFor(() => lines().length > 0 || tail.child.exitCode !== null, 10_000, `tail to print its first line (stderr: ${tail.stderr()})`)
  assert.equal(tail.child.exitCode, null, tail.stderr())

  const submitted = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'general', content: 'tail me' })
  assert.equal(submitted.status, 202)
  const eventTopic = topics.taskEvent(submitted.body.id)
  const events = (): TaskRecord[] => lines().filter((l) => l.startsWith(`${eventTopic} `)).map((l) => JSON.parse(l.slice(eventTopic.length + 1)) as TaskRecord)
  await waitFor(() => events().some((e) => e.state === 'completed'), 10_000, `a completed event on ${eventTopic} in: ${tail.stdout()}`)
  for (const event of events()) assert.equal(event.id, submitted.body.id)
  for (const line of lines()) assert.match(line, /^trinity\/\S+ \S/, 'every line is `topic payload`')

  tail.child.kill('SIGINT')
  const { code, signal } = await tail.exited
  assert.equal(signal, null, 'it handles SIGINT')
  assert.equal(code, 0)
})

test('tail piped into head stops quietly once head has its line (no EPIPE crash)', async () => {
  // `head -1` exits after the first line; tail's next writes hit a closed pipe.
  const shell = spawn('sh', ['-c', `node ${CLI} tail --mqtt ${hub.mqttUrl} | head -1`], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(shell)
  let stderr = ''
  shell.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  // Bus traffic for tail to write after head has gone.
  const busy = setInterval(() => void http(hub.httpUrl, 'POST', '/task', { type: 'general', content: 'for the pipe' }), 100)
  try {
    const code = await new Promise<number | null>((resolve) => shell.once('exit', resolve))
    assert.equal(code, 0)
  } finally {
    clearInterval(busy)
  }
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/, stderr)
})

test('tail prints every retained topic on every run (its handler is there before the subscribe)', async () => {
  // A hub of its own whose retained state stays put: health is checked once an hour, so each
  // instance's health is the one published at its birth, and stats stop changing once all are online.
  const quietDir = tempDir()
  const quiet = await startTestHub(await testConfig(quietDir.path, { health: { interval: '1h' } }))
  const instances: TestInstance[] = []
  try {
    for (const id of ['scribe', 'quill', 'ink']) instances.push(await TestInstance.start({ url: quiet.mqttUrl, id, capabilities: ['general'] }))
    await waitFor(() => instances.every((i) => quiet.coordinator.registry.get(i.id)?.state === 'online'), 10_000, 'three online')
    const expected = [topics.hubStats, ...instances.flatMap((i) => [topics.instanceStatus(i.id), topics.health(i.id)])]
    // What the broker holds, seen by a plain MQTT client: retained copies of every expected topic.
    const retained = new Map<string, string>()
    const probe = await mqtt.connectAsync(quiet.mqttUrl, { reconnectPeriod: 0 })
    probe.on('message', (t, payload, packet) => { if (packet.retain) retained.set(t, payload.toString('utf8')) })
    await probe.subscribeAsync(topics.all, { qos: 0 })
    await waitFor(() => expected.every((t) => retained.has(t)), 10_000, `retained ${expected.join(', ')} (have ${[...retained.keys()].join(', ')})`)
    await probe.endAsync()

    for (let run = 1; run <= 5; run++) {
      const tail = start(['tail', '--mqtt', quiet.mqttUrl])
      const printed = (): Map<string, string> => new Map(tail.stdout().split('\n').filter((l) => l !== '').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]))
      await waitFor(() => expected.every((t) => printed().has(t)) || tail.child.exitCode !== null, 30_000,
        `run ${run}: every retained topic; missing ${expected.filter((t) => !printed().has(t)).join(', ')}`)
      for (const instance of instances) {
        const status = topics.instanceStatus(instance.id)
        assert.equal(printed().get(status), retained.get(status), `run ${run}: ${status} as retained`)
      }
      tail.child.kill('SIGINT')
      assert.deepEqual(await tail.exited, { code: 0, signal: null }, `run ${run}: ${tail.stderr()}`)
    }
  } finally {
    for (const instance of instances) await instance.close()
    await quiet.stop()
    quietDir.remove()
  }
})

test('client commands against a hub that is not running exit non-zero saying they cannot reach it', async () => {
  const url = `http://127.0.0.1:${await freePort()}`
  for (const args of [['submit', 'general', 'hello'], ['submit', 'general', 'hello', '--wait'], ['send', 'c1', 'araya', 'hi'], ['status'], ['status', '--json']]) {
    const result = await run([...args, '--url', url])
    assert.notEqual(result.code, 0, `${args.join(' ')}: ${JSON.stringify(result)}`)
    assert.equal(result.signal, null)
    assert.match(result.stderr, /cannot reach the hub/, `${args.join(' ')}: ${result.stderr}`)
    assert.match(result.stderr, /\(TRINITY_ERR_HUB_UNREACHABLE\)$/m, `${args.join(' ')} ends with the registry code: ${result.stderr}`)
    assert.ok(result.stderr.includes(url), `${args.join(' ')} names the URL: ${result.stderr}`)
    assert.equal(result.stdout, '')
  }
})

test('tail against a bus that is not running exits non-zero saying it cannot reach it', async () => {
  const url = `mqtt://127.0.0.1:${await freePort()}`
  const result = await run(['tail', '--mqtt', url])
  assert.notEqual(result.code, 0, JSON.stringify(result))
  assert.equal(result.signal, null)
  assert.match(result.stderr, /cannot reach/i, result.stderr)
  assert.match(result.stderr, /\(TRINITY_ERR_BUS_UNAVAILABLE\)$/m, result.stderr)
  assert.ok(result.stderr.includes(url), `names the URL: ${result.stderr}`)
})
