/**
 * The user's own path: `npm start` on the shipped, unchanged
 * config/trinity.yaml, on the seed's real ports (1883, 8900, 8001, 8004,
 * 7777, 6000, 5000), as a user runs it, and SIGTERM to npm's own PID.
 *
 * So that it never collides with other tests (or a Trinity the machine runs),
 * it runs in a network namespace of its own: `unshare -n` with only `lo` up.
 * The test reaches the hub from inside it with `nsenter --net=/proc/<pid>/ns/net
 * curl`, and keeps a file descriptor on the namespace so that, after the stop,
 * it can still look inside for listening sockets.
 *
 * Overrides go through the environment only (TRINITY_SET): a temp data dir, a
 * 2 s health interval (to see three intervals quickly) and a generous
 * degradedAfter (how fast an answer is belongs to `npm run bench`; here the
 * question is online or not). What it shows: all six instances online across
 * three health intervals, Visitor Intelligence on port 6000 included (which
 * fetch cannot reach), one task of each of the eight seed types completing
 * with a meaningful result, and after SIGTERM to npm, no process left in the
 * namespace and no listening port. Then the seed's other way in,
 * scripts/start-coordination.sh, stopped by SIGHUP (which npm does not forward:
 * the supervisor notices that its parent died).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { ROOT, testScope, waitFor } from '../helpers/hub.js'
import { seedCase, type SeedCase } from '../helpers/seed-outputs.js'
import type { InstanceList, InstanceView } from '../../src/contract/http.js'

const { dir, cleanups } = testScope()
const HUB = 'http://127.0.0.1:8900'
const SEED_IDS = ['analytics', 'araya', 'builder', 'c1', 'observatory', 'visitor-intelligence']
const HEALTH_INTERVAL_S = 2

interface LogRecord { msg?: string; [key: string]: unknown }

/** Why this machine cannot run the test, or undefined when it can. */
function unshareImpossible(): string | undefined {
  for (const tool of ['unshare', 'nsenter', 'ip', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`
  }
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8' })
  if (probe.status !== 0) return `unshare -n is not permitted here: ${probe.stderr.trim() || `exit ${probe.status}`}`
  return undefined
}

/** Every PID whose network namespace is `ns` (`net:[inode]`). */
function processesIn(ns: string): number[] {
  return readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name)).flatMap((name) => {
    try { return readlinkSync(`/proc/${name}/ns/net`) === ns ? [Number(name)] : [] } catch { return [] }
  })
}

interface Started {
  pid: number
  /** `net:[inode]` of the namespace. */
  ns: string
  records: LogRecord[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  get: <T>(path: string) => Promise<T>
  post: <T>(path: string, body: unknown) => Promise<T>
  fail: (what: string) => never
}

/**
 * `command` (a shell line, run in ROOT) in a new network namespace with `lo`
 * up, with `exec`, so the PID we hold is the command's own; resolves at
 * `trinity started`.
 */
async function startInNamespace(command: string, name: string): Promise<Started> {
  const data = join(dir.path, name, 'data')
  const child = spawn('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec ${command}`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TRINITY_SET: `hub.dataDir=${data},health.interval=${HEALTH_INTERVAL_S}s,health.degradedAfter=5s`,
      TRINITY_WORKSPACE: join(dir.path, name, 'workspace'),
      npm_config_update_notifier: 'false',
    },
  })
  const records: LogRecord[] = []
  let output = ''
  let rest = ''
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString()
    rest += d.toString()
    const lines = rest.split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) if (line.startsWith('{')) { try { records.push(JSON.parse(line) as LogRecord) } catch { /* npm's own lines */ } }
  })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const pid = child.pid
  assert.ok(pid !== undefined)
  const started: Started = {
    pid, ns: '', records, exited,
    fail: (what) => assert.fail(`${what}\n${output.slice(-20_000)}`),
    get: async <T>(path: string) => JSON.parse(await nsenter(pid, 'curl', '-sS', '--fail-with-body', `${HUB}${path}`)) as T,
    post: async <T>(path: string, body: unknown) =>
      JSON.parse(await nsenter(pid, 'curl', '-sS', '--fail-with-body', '-X', 'POST', '-H', 'content-type: application/json', '--data-binary', JSON.stringify(body), `${HUB}${path}`)) as T,
  }
  cleanups.push(async () => {
    // Whatever happened: nothing of ours may outlive the test.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    if (started.ns !== '') for (const p of processesIn(started.ns)) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } }
  })
  await waitFor(() => records.some((r) => r.msg === 'trinity started') || child.exitCode !== null, 120_000, 'trinity started').catch(() => started.fail('no `trinity started`'))
  if (child.exitCode !== null) started.fail(`${command} exited with ${child.exitCode}`)
  started.ns = readlinkSync(`/proc/${pid}/ns/net`)
  assert.notEqual(started.ns, readlinkSync('/proc/self/ns/net'), 'it runs in a network namespace of its own')
  const line = records.find((r) => r.msg === 'trinity started')
  assert.equal(line?.['http'], HUB, 'the seed\'s port 8900')
  assert.equal(line?.['mqtt'], 'mqtt://127.0.0.1:1883', 'the seed\'s port 1883')
  assert.equal(line?.['instances'], '6/6', JSON.stringify(line))
  return started
}

async function nsenter(pid: number, ...args: string[]): Promise<string> {
  return (await promisify(execFile)('nsenter', [`--net=/proc/${pid}/ns/net`, ...args], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 })).stdout
}

/**
 * Sends `signal` to the PID we started and shows that everything in its
 * namespace goes and that nothing listens there any more (through a file
 * descriptor on the namespace, which outlives its processes).
 */
async function stopAndCheckEmpty(s: Started, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const nsFd = openSync(`/proc/${s.pid}/ns/net`, 'r')
  cleanups.push(() => closeSync(nsFd))
  assert.ok(processesIn(s.ns).length >= 8, `npm, the supervisor, the hub, six instances: ${processesIn(s.ns).join(', ')}`)
  process.kill(s.pid, signal)
  const exit = await s.exited
  await waitFor(() => processesIn(s.ns).length === 0, 60_000, 'no process left in the namespace').catch(() => s.fail(`left in the namespace: ${processesIn(s.ns).join(', ')}`))
  assert.ok(s.records.some((r) => r.msg === 'stopped'), 'the supervisor stopped cleanly')
  const tcp = await new Promise<string>((resolve, reject) => {
    const cat = spawn('nsenter', ['--net=/proc/self/fd/3', 'cat', '/proc/net/tcp', '/proc/net/tcp6'], { stdio: ['ignore', 'pipe', 'inherit', nsFd] })
    let out = ''
    cat.stdout?.on('data', (d: Buffer) => { out += d.toString() })
    cat.once('error', reject)
    cat.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`nsenter cat exited ${code}`))))
  })
  // Field 4 (st) 0A is LISTEN.
  const listening = tcp.split('\n').filter((line) => line.trim().split(/\s+/)[3] === '0A')
  assert.deepEqual(listening, [], 'no listening socket left in the namespace')
  return exit
}

test('npm start on the shipped config, seed ports, own network namespace: six online, eight seed tasks done, SIGTERM to npm leaves nothing', { timeout: 300_000 }, async (t) => {
  const impossible = unshareImpossible()
  if (impossible !== undefined) {
    t.diagnostic(`skipped: ${impossible}`)
    return t.skip(impossible)
  }
  const s = await startInNamespace('npm start', 'npm')
  const { get, post, fail } = s
  // All six online, then still online at every look while each is checked three more times.
  let rows: InstanceView[] = []
  await waitFor(async () => {
    rows = (await get<InstanceList>('/instances')).instances
    // The supervisor's "running" follows the birth the coordinator hears first: wait for both.
    return rows.length === 6 && rows.every((r) => r.state === 'online' && r.process?.state === 'running')
  }, 120_000, 'six instances online, each process running').catch(() => fail(`not all online: ${JSON.stringify(rows)}`))
  assert.deepEqual(rows.map((r) => r.id).sort(), SEED_IDS)
  const checksAtStart = new Map(rows.map((r) => [r.id, r.checks]))
  await waitFor(async () => {
    rows = (await get<InstanceList>('/instances')).instances
    const notOnline = rows.filter((r) => r.state !== 'online')
    if (notOnline.length > 0) fail(`went ${notOnline.map((r) => `${r.id}=${r.state} (${r.reason})`).join(', ')} within three health intervals`)
    return rows.every((r) => r.checks >= (checksAtStart.get(r.id) ?? 0) + 3)
  }, 120_000, 'three more health checks of each').catch((err: Error) => fail(err.message))
  const vi = rows.find((r) => r.id === 'visitor-intelligence')
  assert.equal(vi?.state, 'online', 'Visitor Intelligence on port 6000')
  for (const r of rows) assert.equal(r.process?.state, 'running', `${r.id} is supervised`)

  // One task of each seed type, checked on what its result says.
  const cases: SeedCase[] = [
    seedCase('pattern_analysis', 'red fish blue fish red fish', (r) => assert.deepEqual(r.words.slice(0, 2), [['fish', 3], ['red', 2]])),
    seedCase('build_project', 'Todo App', (r) => assert.ok(r.files.includes('package.json'), JSON.stringify(r))),
    seedCase('monitor_system', '', (r) => assert.ok(r.host.totalMemMb > 0 && r.hub.name === 'trinity', JSON.stringify(r))),
    seedCase('track_user', [{ user: 'a', page: '/' }, { user: 'b', page: '/pricing' }, { user: 'a', page: '/pricing' }], (r) => assert.equal(r.users, 2, JSON.stringify(r))),
    seedCase('analyze_data', '3 1 4 1 5', (r) => assert.equal(r.mean, 2.8, JSON.stringify(r))),
    seedCase('bug_fix', 'login loops', (r) => assert.match(r.plan.join('\n'), /login loops/)),
    seedCase('deployment', 'v2 to staging', (r) => assert.match(r.plan.join('\n'), /v2 to staging/)),
    seedCase('general', 'tidy the docs', (r) => assert.match(r.plan.join('\n'), /tidy the docs/)),
  ]
  const submitted = await Promise.all(cases.map(async ([type, content]) => (await post<{ id: string }>('/task', { type, content })).id))
  for (const [n, [type, , check]] of cases.entries()) {
    let task: TaskRecord | undefined
    await waitFor(async () => {
      task = await get<TaskRecord>(`/tasks/${submitted[n]}`)
      return task.state === 'completed' || task.state === 'failed' || task.state === 'dead'
    }, 120_000, `${type} to finish`)
    assert.equal(task?.state, 'completed', `${type}: ${JSON.stringify(task)}`)
    // Fan-out types (`strategy: all`) carry one result per instance: each must be meaningful.
    const outputs = task?.assignments.map((a) => a.output) ?? []
    assert.ok(outputs.length >= 1, `${type}: ${JSON.stringify(task)}`)
    for (const output of outputs) check(output)
  }

  // SIGTERM to npm's own PID: everything in the namespace goes, and nothing listens there.
  const exit = await stopAndCheckEmpty(s, 'SIGTERM')
  t.diagnostic(`npm exited with ${JSON.stringify(exit)}`)
})

test('scripts/start-coordination.sh, SIGHUP to its PID (npm does not forward it): the supervisor sees its parent go and stops everything', { timeout: 300_000 }, async (t) => {
  const impossible = unshareImpossible()
  if (impossible !== undefined) {
    t.diagnostic(`skipped: ${impossible}`)
    return t.skip(impossible)
  }
  const s = await startInNamespace('scripts/start-coordination.sh', 'script')
  const exit = await stopAndCheckEmpty(s, 'SIGHUP')
  assert.deepEqual(exit, { code: null, signal: 'SIGHUP' }, 'npm itself dies of SIGHUP')
  assert.ok(s.records.some((r) => r.msg === 'parent process exited: stopping'), 'the supervisor noticed')
})
