/**
 * A hub that cannot start (its port is taken) stops `trinity start` at once
 * with exit code 1 and the hub's own reason, instead of a minute of restarts;
 * the instances already launched are stopped with it. An instance that cannot
 * start does not hold back the others: `trinity started` comes within the
 * readyTimeout, with what is ready and what failed, and never while stopping.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { CLI, ROOT, freePort, http, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { spawnSupervisor, waitGone } from '../helpers/supervisor.js'
import type { InstanceList } from '../../src/contract/http.js'

const { dir, cleanups } = testScope()

test('a hub port that is taken: exit 1 at once, the reason names the port, nothing left running', async () => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => blocker.close())
  const taken = (blocker.address() as { port: number }).port
  const file = writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: taken, dataDir: join(dir.path, 'data') },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    instances: [{ id: 'c1', capabilities: ['general'], command: `node ${join(ROOT, 'dist/src/fleet/instance.js')} c1` }],
  })
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  cleanups.push(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  assert.equal(code, 1, out)
  const records = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; service?: string; childPid?: number; err?: string })
  assert.ok(records.some((r) => r.service === 'hub' && r.msg.includes(`127.0.0.1:${taken}`) && /in use/.test(r.msg)), `the hub's own reason is in the log:\n${out}`)
  const fatal = records.find((r) => r.msg === 'could not start')
  assert.match(fatal?.err ?? '', /hub: exited before it was ready: exited with code 1/)
  assert.equal(records.filter((r) => r.service === 'hub' && r.msg === 'child starting').length, 1, 'no restarts of a hub that never started')
  await waitGone(records.flatMap((r) => (r.msg === 'child starting' && typeof r.childPid === 'number' ? [r.childPid] : [])), 30_000)
})

/** A config with c1 (no port) and analytics on a port another process holds. */
async function takenPortConfig(name: string, readyTimeout: string): Promise<{ file: string; taken: number }> {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => blocker.close())
  const taken = (blocker.address() as { port: number }).port
  const instance = join(ROOT, 'dist/src/fleet/instance.js')
  const file = writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir.path, name) },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    // Restarted again and again (no crash loop to end the wait): only the readyTimeout bounds it.
    supervisor: { readyTimeout, restart: { base: '200ms', max: '1s' }, crashLoop: { restarts: 1000, window: '2m' } },
    instances: [
      { id: 'c1', capabilities: ['general'], command: `node ${instance} c1`, env: { TRINITY_WORKSPACE: join(dir.path, name, 'ws') } },
      { id: 'analytics', capabilities: ['analyze_data'], port: taken, command: `node ${instance} analytics` },
    ],
  }, `${name}.yaml`)
  return { file, taken }
}

test('an instance that cannot start (its port is taken) does not hold back `trinity started`: ready with 1/2, the failure named', async () => {
  const { file, taken } = await takenPortConfig('oneport', '30s')
  // spawnSupervisor waits (up to a minute) for the ready signal, sent with `trinity started`: it must come, bounded by the readyTimeout.
  const sup = await spawnSupervisor(file, { cwd: ROOT })
  cleanups.push(async () => { await sup.stop('SIGKILL'); await waitGone(sup.childPids(), 30_000).catch(() => undefined) })
  assert.deepEqual(sup.ready.children.filter((c) => c.kind === 'instance').map((c) => [c.name, c.state === 'running']), [['c1', true], ['analytics', false]])
  // The human line says the same, with the failure's reason; it comes on stdout, apart from the signal.
  await waitFor(() => sup.records.some((r) => r.msg === 'trinity started'), 30_000, 'the `trinity started` line')
  const started = sup.records.filter((r) => r.msg === 'trinity started')
  assert.equal(started.length, 1)
  assert.equal(started[0]?.['instances'], '1/2')
  const failed = started[0]?.['failed'] as string[] | undefined
  assert.equal(failed?.length, 1, JSON.stringify(started[0]))
  assert.match(failed?.[0] ?? '', new RegExp(`^analytics: exited with code 1 \\(analytics: port ${taken} is already in use.*\\); restarting`))
  const rows = (await http<InstanceList>(sup.httpUrl, 'GET', '/instances')).body.instances
  assert.equal(rows.find((r) => r.id === 'c1')?.state, 'online', 'the one that could start works')

  const exit = await sup.stop('SIGTERM')
  assert.deepEqual(exit, { code: 0, signal: null })
  const stopping = sup.records.findIndex((r) => r.msg === 'stopping')
  assert.ok(stopping > 0)
  assert.deepEqual(sup.records.slice(stopping).filter((r) => r.msg === 'trinity started'), [], 'nothing says "started" while stopping')
  await waitGone(sup.childPids(), 30_000)
})

test('SIGTERM while an instance is still not ready: stops cleanly, and never logs `trinity started`', async () => {
  const { file } = await takenPortConfig('stopearly', '60s')
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  cleanups.push(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const records = (): { msg: string; service?: string; childPid?: number }[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string })
  // c1 is up and analytics has failed at least once: the supervisor is waiting for it.
  await waitFor(() => records().some((r) => r.service === 'c1' && r.msg === 'child running') && records().some((r) => r.service === 'analytics' && r.msg === 'exited; restarting after backoff'), 60_000, 'c1 running, analytics failing')
  child.kill('SIGTERM')
  assert.equal(await exited, 0, out)
  assert.ok(records().some((r) => r.msg === 'stopped'), out)
  assert.deepEqual(records().filter((r) => r.msg === 'trinity started'), [], out)
  assert.deepEqual(records().filter((r) => r.msg === 'could not start'), [], 'a requested stop is not a failure')
  await waitGone(records().flatMap((r) => (r.msg === 'child starting' && typeof r.childPid === 'number' ? [r.childPid] : [])), 30_000)
})
