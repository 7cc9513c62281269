/**
 * A broken store is loud and safe (issue #14): a corrupt or empty trinity.db
 * stops `trinity hub` with TRINITY_ERR_STORE_CORRUPT before the broker takes a
 * connection, and a full data dir (a real 2 MiB tmpfs in a mount namespace of
 * the hub's own) refuses submissions with TRINITY_ERR_STORE_FULL, over HTTP
 * and MQTT, until space is freed, losing none it accepted; a change to an
 * accepted task that finds the disk full is held and written once there is
 * room, and the task completes in the same run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, writeSync, closeSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { TaskEvent, TaskRecord } from '../src/contract/payloads/task.js'
import type { HubHealth, TaskList } from '../src/contract/http.js'
import type { HubError } from '../src/contract/payloads/hub.js'
import { topicsFor } from '../src/contract/topics.js'
import { SqliteStore } from '../src/coordinator/sqlite-store.js'
import { CLI, freePort, http, testConfig, testScope, waitFor, writeConfig } from './helpers/hub.js'
import { TestInstance } from './helpers/instance.js'

const { dir, cleanups } = testScope()

/** `trinity hub` on fixed ports (so the test can knock on the broker's); resolves with its exit code and output. */
async function runHub(name: string, prepare: (dbFile: string) => void): Promise<{ code: number | null; output: string; brokerAccepted: number }> {
  const dataDir = join(dir.path, name)
  mkdirSync(dataDir, { recursive: true })
  prepare(join(dataDir, 'trinity.db'))
  const brokerPort = await freePort()
  const config = await testConfig(dataDir, { hub: { port: await freePort() }, broker: { port: brokerPort }, instances: [{ id: 'c1' }] })
  const child = spawn(process.execPath, [CLI, 'hub', '--config', writeConfig(dataDir, config)], { stdio: ['ignore', 'pipe', 'pipe'] })
  cleanups.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  // While it lives, knock on the broker's port: a hub that cannot store must never have taken a connection.
  let brokerAccepted = 0
  let alive = true
  void exited.then(() => { alive = false })
  const knock = (async () => {
    while (alive) {
      const accepted = await new Promise<boolean>((resolve) => {
        const socket = connect(brokerPort, '127.0.0.1', () => { socket.destroy(); resolve(true) })
        socket.once('error', () => resolve(false))
      })
      if (accepted) brokerAccepted++
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref())
  const outcome = await Promise.race([exited, timeout])
  if (outcome === 'timeout') {
    child.kill('SIGKILL')
    await exited
    await knock
    assert.fail(`the hub did not exit within 60 s (broker accepted ${brokerAccepted} connections):\n${output}`)
  }
  await knock
  return { code: outcome, output, brokerAccepted }
}

test('a trinity.db whose header is junk: the hub exits non-zero naming the file, and its broker never took a connection', async () => {
  let file = ''
  const { code, output, brokerAccepted } = await runHub('corrupt', (dbFile) => {
    file = dbFile
    // A real store with a task in it, then its first 100 bytes (the SQLite header) overwritten.
    const store = new SqliteStore({ file: dbFile, sync: 'normal' })
    store.saveTaskJson({ id: 't-1', state: 'queued', type: 'general', createdAt: 1, updatedAt: 1 }, '{}', '{}')
    store.close()
    const fd = openSync(dbFile, 'r+')
    writeSync(fd, Buffer.alloc(100, 'junk'), 0, 100, 0)
    closeSync(fd)
  })
  assert.notEqual(code, 0, output)
  assert.notEqual(code, null, output)
  assert.match(output, /TRINITY_ERR_STORE_CORRUPT/)
  assert.ok(output.includes(file), `the message names ${file}:\n${output}`)
  assert.match(output, /move it aside/)
  assert.equal(brokerAccepted, 0, `the broker accepted connections before the hub gave up:\n${output}`)
})

test('a 0-byte trinity.db: the hub refuses to start, saying it is empty and how to start fresh', async () => {
  const { code, output, brokerAccepted } = await runHub('empty', (dbFile) => writeFileSync(dbFile, ''))
  assert.notEqual(code, 0, output)
  assert.notEqual(code, null, output)
  assert.match(output, /TRINITY_ERR_STORE_CORRUPT/)
  assert.match(output, /empty \(truncated\?\)/)
  assert.match(output, /move it aside/)
  assert.equal(brokerAccepted, 0, output)
})

test('a full data dir (2 MiB tmpfs): 507 STORE_FULL over HTTP, refused on hub/errors over MQTT, the hub stays up, and works again once space is freed', async () => {
  // CI and this machine run the tests as root: a real full disk needs a mount of our own.
  assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs in its own mount namespace: run it as root')
  const dataDir = join(dir.path, 'full')
  mkdirSync(dataDir, { recursive: true })
  const [httpPort, brokerPort] = [await freePort(), await freePort()]
  // Outside the tmpfs, which covers only the data dir.
  const configFile = writeConfig(dir.path, await testConfig(dataDir, { hub: { port: httpPort }, broker: { port: brokerPort }, instances: [{ id: 'c1' }] }), 'full.yaml')
  const filler = join(dataDir, 'filler')
  const { child, url, output } = await hubOnTmpfs(dataDir, configFile, httpPort, { file: filler, bytes: 1_200_000 })

  const topics = topicsFor('trinity')
  const bus = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { reconnectPeriod: 0 })
  cleanups.push(() => bus.endAsync())
  const refusals: HubError[] = []
  bus.on('message', (_t, payload) => refusals.push(JSON.parse(payload.toString()) as HubError))
  await bus.subscribeAsync(topics.hubErrors, { qos: 1 })

  // Each task ~16 KiB: the ~800 KiB left fills within a few dozen (the WAL grows with every commit).
  const content = { pad: 'x'.repeat(16_000) }
  const accepted: string[] = []
  let refused: { status: number; body: { error: { code: string; message: string } } } | undefined
  for (let i = 0; i < 400 && refused === undefined; i++) {
    const r = await http<{ id: string; error: { code: string; message: string } }>(url, 'POST', '/task', { type: 'general', content })
    if (r.status === 202) accepted.push(r.body.id)
    else refused = r
  }
  assert.ok(refused !== undefined, `the store never filled after ${accepted.length} tasks:\n${output()}`)
  assert.ok(accepted.length > 0, 'some tasks fit before the disk filled')
  assert.equal(refused.status, 507, JSON.stringify(refused.body))
  assert.equal(refused.body.error.code, 'TRINITY_ERR_STORE_FULL')
  assert.match(refused.body.error.message, /trinity\.db/)
  assert.match(refused.body.error.message, /full/)

  // Over MQTT: refused on hub/errors with the reason (the PUBACK still comes: the broker took the packet).
  await bus.publishAsync(topics.taskSubmit, JSON.stringify({ id: 'mqtt-full', type: 'general', content }), { qos: 1 })
  await waitFor(() => refusals.some((e) => e.code === 'TRINITY_ERR_STORE_FULL'), 30_000, () => `a STORE_FULL refusal on hub/errors (got ${JSON.stringify(refusals.map((e) => e.code))}):\n${output()}`)
  assert.match(refusals.find((e) => e.code === 'TRINITY_ERR_STORE_FULL')?.reason ?? '', /full/)
  assert.equal((await http(url, 'GET', '/tasks/mqtt-full')).status, 404, 'a refused submission leaves nothing behind')

  // Still up, and no crash on the way.
  assert.equal(child.exitCode, null, output())
  const health = await http(url, 'GET', '/health')
  assert.equal(health.status, 200, `${JSON.stringify(health.body)}\n${output()}`)
  assert.doesNotMatch(output(), /uncaught|unhandled/i)

  // Free space (inside the hub's mount namespace), and submissions work again.
  const freed = spawnSync('nsenter', ['-t', String(child.pid), '-m', 'rm', filler], { encoding: 'utf8' })
  assert.equal(freed.status, 0, freed.stderr)
  const again = await http<{ id: string }>(url, 'POST', '/task', { type: 'general', content })
  assert.equal(again.status, 202, JSON.stringify(again.body))
  accepted.push(again.body.id)
  await bus.publishAsync(topics.taskSubmit, JSON.stringify({ id: 'mqtt-after', type: 'general', content: { n: 1 } }), { qos: 1 })
  await waitFor(async () => (await http(url, 'GET', '/tasks/mqtt-after')).status === 200, 30_000, 'the MQTT submission after space was freed')

  // No accepted task was lost.
  for (const id of accepted) {
    const task = await http<TaskRecord>(url, 'GET', `/tasks/${id}`)
    assert.equal(task.status, 200, `accepted task ${id} is gone`)
    assert.equal(task.body.state, 'queued', `accepted task ${id}: ${JSON.stringify(task.body.error)}`)
  }
  // The counts are the store's (countTasksByState), not the queue in memory: every accepted task is on disk.
  const counts = (await http<TaskList>(url, 'GET', '/tasks?limit=1')).body.counts
  assert.equal(counts['queued'], accepted.length + 1, JSON.stringify(counts))
  assert.equal(child.exitCode, null, output())
  assert.doesNotMatch(output(), /uncaught|unhandled/i)
})

test('the disk fills while an accepted task runs: its completion is held, not buried; once space is freed it completes in the same run, exactly once, and the task queued behind it runs too', async () => {
  assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs in its own mount namespace: run it as root')
  const dataDir = join(dir.path, 'fills')
  mkdirSync(dataDir, { recursive: true })
  const [httpPort, brokerPort] = [await freePort(), await freePort()]
  // info: the full disk and its end are each said once, at error and info.
  const configFile = writeConfig(dir.path, await testConfig(dataDir, {
    hub: { port: httpPort }, broker: { port: brokerPort }, log: { level: 'info' }, instances: [{ id: 'c1' }],
    routes: { general: { targets: ['c1'] } }, tasks: { lease: '120s' }, health: { timeout: '30s', degradedAfter: '20s', missesBeforeOffline: 5 },
  }), 'fills.yaml')
  const filler = join(dataDir, 'filler')
  const { child, url, output } = await hubOnTmpfs(dataDir, configFile, httpPort)
  const hubPid = child.pid
  const inHub = (...command: string[]) => spawnSync('nsenter', ['-t', String(hubPid), '-m', ...command], { encoding: 'utf8' })

  // Every event of the two tasks, to count completions.
  const topics = topicsFor('trinity')
  const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { reconnectPeriod: 0 })
  cleanups.push(() => watcher.endAsync())
  const events: TaskEvent[] = []
  watcher.on('message', (_t, payload) => events.push(JSON.parse(payload.toString()) as TaskEvent))
  await watcher.subscribeAsync([topics.taskEvent('runs'), topics.taskEvent('waits')], { qos: 1 })
  // c1 takes one task at a time and reports by hand.
  const c1 = await TestInstance.start({ url: `mqtt://127.0.0.1:${brokerPort}`, id: 'c1', capabilities: ['general'], concurrency: 1, manual: true })
  cleanups.push(() => c1.close())
  const state = async (id: string): Promise<string | undefined> => (await http<TaskRecord>(url, 'GET', `/tasks/${id}`)).body.state
  const stored = async (id: string, wanted: string): Promise<boolean> =>
    (await http<TaskList>(url, 'GET', `/tasks?state=${wanted}`)).body.tasks.some((t) => t.id === id)
  await waitFor(async () => (await http<{ instances: { id: string; state: string }[] }>(url, 'GET', '/instances')).body.instances.some((i) => i.id === 'c1' && i.state === 'online'), 60_000, 'c1 online')

  for (const id of ['runs', 'waits']) assert.equal((await http(url, 'POST', '/task', { id, type: 'general', content: { id } })).status, 202)
  await c1.waitForTasks(1, 60_000)
  const runs = c1.received[0]
  assert.equal(runs?.id, 'runs')
  await c1.report({ taskId: 'runs', leaseToken: runs.leaseToken, state: 'started' })
  await waitFor(async () => await stored('runs', 'running'), 60_000, 'runs stored as running')

  // Fill the tmpfs to the last byte (head stops at ENOSPC), then complete with an output the WAL has no room for.
  const filled = inHub('sh', '-c', `head -c 4000000 /dev/zero > "${filler}"; df -B1 "${dataDir}" | tail -1`)
  assert.match(filled.stdout, /\s0\s+100%/, `the tmpfs is full: ${filled.stdout}${filled.stderr}`)
  const output_ = { text: 'o'.repeat(300_000) }
  await c1.report({ taskId: 'runs', leaseToken: runs.leaseToken, state: 'completed', output: output_ })
  await waitFor(async () => (await http<HubHealth>(url, 'GET', '/health')).body.store === 'full', 60_000, () => `GET /health to say store: full:\n${output()}`)
  const health = await http<HubHealth>(url, 'GET', '/health')
  assert.equal(health.status, 200, 'a full store is not a dead hub')
  assert.deepEqual(health.body, { status: 'degraded', bus: 'connected', store: 'full', role: 'leader' })
  assert.equal(await state('runs'), 'completed', 'the change is kept in memory')
  assert.equal(await stored('runs', 'running'), true, 'and not yet on disk')
  assert.equal(events.filter((e) => e.id === 'runs' && e.state === 'completed').length, 0, 'not published before it is stored')
  // Nothing new needs a write meanwhile: c1 is free, but `waits` is not assigned; a submission is refused.
  const refused = await http<{ error: { code: string } }>(url, 'POST', '/task', { type: 'general', content: 'more' })
  assert.equal(refused.status, 507)
  assert.equal(refused.body.error.code, 'TRINITY_ERR_STORE_FULL')
  await new Promise((r) => setTimeout(r, 2500)) // a few retries, which must not assign anything
  assert.equal(c1.received.length, 1, 'nothing assigned while the disk is full')
  assert.equal(await state('waits'), 'queued')

  // Free the space: the retry writes the completion, and `waits` goes to c1.
  const freed = inHub('rm', filler)
  assert.equal(freed.status, 0, freed.stderr)
  await waitFor(async () => await stored('runs', 'completed'), 60_000, () => `runs stored as completed once space is freed:\n${output()}`)
  await c1.waitForTasks(2, 60_000)
  const waits = c1.received[1]
  assert.equal(waits?.id, 'waits')
  await c1.report({ taskId: 'waits', leaseToken: waits.leaseToken, state: 'completed', output: 'done' })
  await waitFor(async () => await stored('waits', 'completed'), 60_000, 'waits completed')
  await waitFor(() => events.filter((e) => e.state === 'completed').length >= 2, 30_000, 'both completion events')

  const record = (await http<TaskRecord>(url, 'GET', '/tasks/runs')).body
  assert.deepEqual(record.result, output_, 'the completion, with its output, as reported')
  assert.equal(record.assignments[0]?.attempts, 1, 'one attempt: never re-run')
  assert.equal(events.filter((e) => e.id === 'runs' && e.state === 'completed').length, 1, 'runs completed exactly once')
  assert.equal(events.filter((e) => e.id === 'waits' && e.state === 'completed').length, 1)
  assert.ok(!events.some((e) => e.state === 'dead'), JSON.stringify(events.map((e) => [e.id, e.state])))
  assert.deepEqual(c1.received.map((t) => t.id), ['runs', 'waits'], 'each sent once')
  assert.deepEqual((await http<HubHealth>(url, 'GET', '/health')).body, { status: 'ok', bus: 'connected', store: 'ok', role: 'leader' })
  const counts = (await http<TaskList>(url, 'GET', '/tasks?limit=1')).body.counts
  assert.equal(counts['completed'], 2, JSON.stringify(counts))
  // The same process all along, and the full disk said once, its end once.
  assert.equal(child.exitCode, null, output())
  assert.equal(child.pid, hubPid)
  assert.equal(output().match(/the store is full/g)?.length, 1, output())
  assert.equal(output().match(/the store has room again/g)?.length, 1, output())
  assert.doesNotMatch(output(), /dead-lettered|uncaught|unhandled/i)
})

/**
 * A hub whose data dir is a 2 MiB tmpfs of its own (unshare -m: a private mount namespace, so the tmpfs
 * is this hub's alone and vanishes with it), `fill` written there first; answering /health.
 */
async function hubOnTmpfs(dataDir: string, configFile: string, httpPort: number, fill?: { file: string; bytes: number }): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const script = fill === undefined
    ? 'mount -t tmpfs -o size=2m tmpfs "$1" && shift && exec "$@"'
    : `mount -t tmpfs -o size=2m tmpfs "$1" && head -c ${fill.bytes} /dev/zero > "$2" && shift 2 && exec "$@"`
  const child = spawn('unshare', ['-m', 'sh', '-c', script, 'sh', dataDir, ...(fill === undefined ? [] : [fill.file]), process.execPath, CLI, 'hub', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
  cleanups.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const url = `http://127.0.0.1:${httpPort}`
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`hub exited with ${child.exitCode}:\n${output}`)
    return fetch(`${url}/health`).then((r) => r.ok).catch(() => false)
  }, 60_000, 'the hub on the tmpfs to answer')
  return { child, url, output: () => output }
}
