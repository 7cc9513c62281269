/**
 * A grandchild that calls `setsid` leaves its run's process group, so the group
 * kill missed it: one orphan per restart (issue #14). Each run is tagged
 * (TRINITY_RUN_ID) and what still carries the tag is killed when the run ends:
 * on a restart and when the supervisor stops.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { InstanceList } from '../../src/contract/http.js'
import { ROOT, freePort, http, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { alive, spawnSupervisor, waitGone } from '../helpers/supervisor.js'

const { dir, cleanups } = testScope()
const AGENT = join(ROOT, 'dist/test/fixtures/slow-agent.js')
const PIDS = join(dir.path, 'escaped.pids')

function escaped(): number[] {
  return existsSync(PIDS) ? readFileSync(PIDS, 'utf8').trim().split('\n').filter((l) => l !== '').map(Number) : []
}

test('a setsid grandchild is killed when its run ends: on a restart, and when the supervisor stops', async () => {
  // Whatever happens, nothing this test started outlives it.
  cleanups.push(() => { for (const pid of escaped()) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } } })
  const file = writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir.path, 'data') },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    supervisor: { stopTimeout: '3s', readyTimeout: '60s' },
    instances: [{
      id: 'escaper', capabilities: ['slow_job'],
      // A new session and group: the sleep is no longer in the run's process group.
      command: `setsid sh -c 'echo $$ >> ${PIDS}; exec sleep 600' & exec node ${AGENT} escaper`,
    }],
    routes: { slow_job: { targets: ['escaper'] } },
  })
  const sup = await spawnSupervisor(file, { cwd: ROOT })
  cleanups.push(() => sup.stop('SIGKILL'))
  const online = async (): Promise<boolean> =>
    (await http<InstanceList>(sup.httpUrl, 'GET', '/instances')).body.instances.some((i) => i.id === 'escaper' && i.state === 'online')
  await waitFor(online, 60_000, 'escaper online')
  await waitFor(() => escaped().length === 1, 60_000, 'the first run to start its setsid sleep')
  const [first] = escaped()
  assert.ok(first !== undefined && alive(first), 'the setsid sleep runs')
  // `pid (sleep) state ppid pgrp …`: it leads a group of its own, out of reach of the run's group kill.
  assert.equal(readFileSync(`/proc/${first}/stat`, 'utf8').split(' ')[4], String(first), 'it left the run\'s process group')

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
