/**
 * A grandchild that calls `setsid` leaves its run's process group, so the group
 * kill missed it: one orphan per restart (issue #14). Each run is tagged
 * (TRINITY_RUN_ID) and what still carries the tag is killed when the run ends:
 * on a restart and when the supervisor stops, and, when the supervisor is
 * SIGKILLed, by its lifeline.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ENV } from '../../src/config/env.js'
import type { InstanceList } from '../../src/contract/http.js'
import { processesOfRun, reapRun } from '../../src/supervisor/run-reaper.js'
import { ROOT, freePort, http, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { alive, spawnSupervisor, waitGone } from '../helpers/supervisor.js'

const { dir, cleanups } = testScope()
const AGENT = join(ROOT, 'dist/test/fixtures/slow-agent.js')

/** A config whose one instance starts a `setsid` sleep per run, its PID appended to `<name>.pids`. */
async function escaperConfig(name: string): Promise<{ file: string; escaped: () => number[] }> {
  const pids = join(dir.path, `${name}.pids`)
  const escaped = (): number[] => existsSync(pids) ? readFileSync(pids, 'utf8').trim().split('\n').filter((l) => l !== '').map(Number) : []
  // Whatever happens, nothing this test started outlives it.
  cleanups.push(() => { for (const pid of escaped()) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } } })
  const file = writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir.path, name, 'data') },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    supervisor: { stopTimeout: '3s', readyTimeout: '60s' },
    instances: [{
      id: 'escaper', capabilities: ['slow_job'],
      // A new session and group: the sleep is no longer in the run's process group.
      command: `setsid sh -c 'echo $$ >> ${pids}; exec sleep 600' & exec node ${AGENT} escaper`,
    }],
    routes: { slow_job: { targets: ['escaper'] } },
  }, `${name}.yaml`)
  return { file, escaped }
}

/** `pid (sleep) state ppid pgrp …`: whether it leads a group of its own, out of reach of the run's group kill. */
function leadsOwnGroup(pid: number): boolean {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[4] === String(pid)
}

/** The run tag in a process's environment (what the supervisor set for the run it belongs to). */
function runIdOf(pid: number): string {
  const prefix = `${ENV.runId}=`
  const entry = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith(prefix))
  assert.ok(entry !== undefined, `process ${pid} carries ${ENV.runId}`)
  return entry.slice(prefix.length)
}

test('a setsid grandchild is killed when its run ends: on a restart, and when the supervisor stops', async () => {
  const { file, escaped } = await escaperConfig('graceful')
  const sup = await spawnSupervisor(file, { cwd: ROOT })
  cleanups.push(() => sup.stop('SIGKILL'))
  const online = async (): Promise<boolean> =>
    (await http<InstanceList>(sup.httpUrl, 'GET', '/instances')).body.instances.some((i) => i.id === 'escaper' && i.state === 'online')
  await waitFor(online, 60_000, 'escaper online')
  await waitFor(() => escaped().length === 1, 60_000, 'the first run to start its setsid sleep')
  const [first] = escaped()
  assert.ok(first !== undefined && alive(first), 'the setsid sleep runs')
  assert.ok(leadsOwnGroup(first), 'it left the run\'s process group')

  const restart = await http<{ action: string }>(sup.httpUrl, 'POST', '/instances/escaper/restart')
  assert.equal(restart.status, 202)
  await waitGone([first], 60_000)
  await waitFor(() => escaped().length === 2, 60_000, 'the second run to start its setsid sleep')
  const second = escaped()[1]
  assert.ok(second !== undefined && alive(second), 'the second run\'s sleep runs')

  const exit = await sup.stop('SIGTERM')
  assert.equal(exit.code, 0)
  await waitGone([second], 60_000)
  assert.ok(sup.records.some((r) => r.msg === 'trinity started'))
})

test('kill -9 of the supervisor: its lifeline reaps the setsid grandchild too, no process of its runs is left', async () => {
  const { file, escaped } = await escaperConfig('sigkill')
  const sup = await spawnSupervisor(file, { cwd: ROOT })
  const runIds: string[] = []
  // Even if an assertion fails: the supervisor, its lifeline, and whatever carries one of its run tags.
  cleanups.push(async () => {
    await sup.stop('SIGKILL')
    try { process.kill(sup.lifeline, 'SIGKILL') } catch { /* gone */ }
    for (const runId of runIds) reapRun(runId)
  })
  await waitFor(() => escaped().length === 1, 60_000, 'the instance to start its setsid sleep')
  const [sleep] = escaped()
  assert.ok(sleep !== undefined && alive(sleep), 'the setsid sleep runs')
  assert.ok(leadsOwnGroup(sleep), 'it left the run\'s process group')
  // Every run the supervisor has going: the hub's and the instance's (the sleep carries the instance's).
  runIds.push(...new Set([...sup.childPids(), sleep].map(runIdOf)))
  assert.equal(runIds.length, 2, `one run tag per child: ${runIds.join(', ')}`)
  assert.ok(processesOfRun(runIdOf(sleep)).includes(sleep), 'the /proc scan finds the sleep by its run tag')

  sup.child.kill('SIGKILL')
  assert.deepEqual(await sup.exited, { code: null, signal: 'SIGKILL' })
  const left = (): number[] => runIds.flatMap((runId) => processesOfRun(runId))
  await waitFor(() => left().length === 0, 60_000, () => `no process of the supervisor's runs left (still: ${left().join(', ')})`)
  assert.equal(alive(sleep), false, 'the setsid sleep is gone')
  await waitGone([sup.lifeline], 60_000)
})
