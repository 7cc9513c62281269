/**
 * `trinity start` with the reference fleet: the hub and all six demo
 * instances come up under the supervisor, a task of each seed type completes
 * with a real result, every child's log lines reach the one stream, and
 * SIGINT, or a SIGKILL of the supervisor itself, leaves no process behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { ROOT, http, testScope, waitFor } from '../helpers/hub.js'
import { seedCase, type SeedCase } from '../helpers/seed-outputs.js'
import { alive, fleetConfigFile, spawnSupervisor, waitGone, type SupervisorProcess } from '../helpers/supervisor.js'
import type { InstanceList, InstanceView } from '../../src/contract/http.js'

const { dir, cleanups } = testScope()
const STOP_TIMEOUT_MS = 30_000


/**
 * The fleet on fixed free ports (instances launch while the hub starts, so the ports are chosen
 * up front). Another test may take one of them between the choice and the bind: then the
 * supervisor stops with TRINITY_ERR_PORT_IN_USE, and the fleet starts again on new ports.
 */
async function start(name: string): Promise<SupervisorProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      const sup = await spawnSupervisor(await fleetConfigFile(dir.path, `${name}-${attempt}`, { supervisor: { stopTimeout: `${STOP_TIMEOUT_MS}ms` } }), { cwd: ROOT })
      cleanups.push(async () => { await sup.stop('SIGKILL'); await waitGone(sup.childPids(), 5000).catch(() => undefined) })
      return sup
    } catch (err) {
      if (attempt >= 3 || !/TRINITY_ERR_PORT_IN_USE/.test((err as Error).message)) throw err
    }
  }
}

test('npm start brings the six instances online, a task of each seed type completes, Ctrl-C leaves nothing behind', async () => {
  const sup = await start('fleet')
  let rows: InstanceView[] = []
  await waitFor(async () => {
    rows = (await http<InstanceList>(sup.httpUrl, 'GET', '/instances')).body.instances
    // The coordinator hears a birth before the supervisor's status saying that run is ready
    // (the supervisor learns it from the same birth), so both are waited for.
    return rows.length === 6 && rows.every((r) => r.state === 'online' && r.process?.state === 'running')
  }, 60_000, 'six instances online, each process running')
  // How fast (the issue's 5 s budget) is `npm run bench`'s business (bench/supervisor.ts), not a test's.
  assert.deepEqual(rows.map((r) => r.id).sort(), ['analytics', 'araya', 'builder', 'c1', 'observatory', 'visitor-intelligence'])

  const cases: SeedCase[] = [
    seedCase('analyze_data', '3 1 4 1 5', (r) => assert.equal(r.mean, 2.8)),
    seedCase('pattern_analysis', 'red fish blue fish red fish', (r) => assert.deepEqual(r.words.slice(0, 2), [['fish', 3], ['red', 2]])),
    seedCase('track_user', [{ user: 'a', page: '/' }, { user: 'b', page: '/' }], (r) => assert.equal(r.users, 2)),
    seedCase('monitor_system', '', (r) => assert.ok(r.host.totalMemMb > 0 && r.hub.name === 'trinity', JSON.stringify(r))),
    seedCase('build_project', 'Todo App', (r) => assert.ok(r.files.includes('package.json'))),
    seedCase('bug_fix', 'login loops', (r) => assert.match(r.plan.join('\n'), /login loops/)),
    seedCase('deployment', 'v2 to staging', (r) => assert.match(r.plan.join('\n'), /v2 to staging/)),
    seedCase('general', 'tidy the docs', (r) => assert.match(r.plan.join('\n'), /tidy the docs/)),
  ]
  for (const [type, content, check] of cases) {
    const { body } = await http<{ id: string }>(sup.httpUrl, 'POST', '/task', { type, content })
    let task: TaskRecord | undefined
    await waitFor(async () => {
      task = (await http<TaskRecord>(sup.httpUrl, 'GET', `/tasks/${body.id}`)).body
      return task.state === 'completed' || task.state === 'failed' || task.state === 'dead'
    }, 60_000, `${type} to finish`)
    assert.equal(task?.state, 'completed', `${type}: ${JSON.stringify(task)}`)
    // Fan-out tasks (`all`) carry one result per instance.
    const results = task?.assignments.map((a) => a.output) ?? []
    for (const result of results) check(result)
  }

  // One stream: the instances' own lines, with their service and instance fields.
  for (const id of ['araya', 'c1', 'analytics']) {
    assert.ok(sup.records.some((r) => r.msg === 'instance ready' && r.service === id && r.instance === id), `${id} ready line in the stream`)
  }
  assert.ok(sup.records.some((r) => r.msg === 'trinity hub started' && r.service === 'hub'))
  assert.deepEqual(sup.plain, [])

  const pids = [...sup.childPids(), sup.lifeline]
  assert.equal(pids.length, 8)
  assert.ok(pids.every(alive))
  const exit = await sup.stop('SIGINT')
  assert.deepEqual(exit, { code: 0, signal: null })
  // Each child went on SIGTERM within its grace period: none needed the SIGKILL after stopTimeout.
  const stops = sup.records.filter((r) => r.msg === 'child stopped')
  assert.equal(stops.length, 7, 'the hub and six instances')
  assert.deepEqual(stops.filter((r) => r['exitSignal'] === 'SIGKILL').map((r) => r.service), [])
  await waitGone(pids, 30_000)
  const order = sup.records.filter((r) => r.msg === 'child stopped').map((r) => r.service)
  assert.equal(order.at(-1), 'hub', 'the hub stops last')
})

test('SIGKILL of the hub: the supervisor restarts it and all six instances are online again', async () => {
  const sup = await start('hubcrash')
  let rows: InstanceView[] = []
  const online = async (): Promise<boolean> => {
    rows = await http<InstanceList>(sup.httpUrl, 'GET', '/instances').then((r) => r.body.instances, () => [])
    return rows.length === 6 && rows.every((r) => r.state === 'online')
  }
  const states = (): string => rows.map((r) => `${r.id}=${r.state}/${r.process?.state ?? '-'}`).join(' ')
  await waitFor(online, 60_000, 'six online')
  const hub = sup.records.find((r) => r.service === 'hub' && r.msg === 'child starting')?.childPid
  assert.ok(typeof hub === 'number')
  process.kill(hub, 'SIGKILL')
  await waitFor(() => sup.records.some((r) => r.service === 'hub' && r.msg === 'child running' && r.childPid !== hub), 60_000, 'hub restarted')
  await waitFor(online, 60_000, 'six online again').catch((err: Error) => assert.fail(`${err.message}: ${states()}`))
  const { body } = await http<{ id: string }>(sup.httpUrl, 'POST', '/task', { type: 'analyze_data', content: '1 2 3' })
  await waitFor(async () => (await http<TaskRecord>(sup.httpUrl, 'GET', `/tasks/${body.id}`)).body.state === 'completed', 60_000, 'a task after the restart')
})

test('SIGKILL of the supervisor: every child notices and exits', async () => {
  const sup = await start('orphans')
  const pids = [...sup.childPids(), sup.lifeline]
  assert.ok(pids.length >= 8 && pids.every(alive))
  await sup.stop('SIGKILL')
  await waitGone(pids, 30_000)
})
