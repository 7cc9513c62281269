/**
 * Every way a stop reaches `trinity start` stops everything gracefully:
 * SIGHUP as SIGTERM; a Ctrl-C delivered twice at once (the terminal's, then
 * npm's forwarded copy) as one; and the death of its parent (npm killed by a
 * signal it does not forward) as a stop request.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { READY_STDIO, waitForReady } from '../../src/ready.js'
import { CLI, ROOT, freePort, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { spawnSupervisor, waitGone, type LogRecord } from '../helpers/supervisor.js'

const { dir, cleanups } = testScope()

async function oneInstanceConfig(name: string): Promise<string> {
  return writeConfig(dir.path, {
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir.path, name) },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    instances: [{ id: 'c1', capabilities: ['general'], command: `node ${join(ROOT, 'dist/src/fleet/instance.js')} c1`, env: { TRINITY_WORKSPACE: join(dir.path, name, 'ws') } }],
  }, `${name}.yaml`)
}

for (const [name, signals] of [['SIGHUP', ['SIGHUP']], ['a doubled SIGINT', ['SIGINT', 'SIGINT']]] as const) {
  test(`${name} to trinity start: a graceful stop, exit 0, nothing left`, async () => {
    const sup = await spawnSupervisor(await oneInstanceConfig(name.replace(/\W/g, '')), { cwd: ROOT })
    cleanups.push(() => sup.stop('SIGKILL'))
    const pids = [...sup.childPids(), sup.lifeline]
    for (const signal of signals) sup.child.kill(signal)
    assert.deepEqual(await sup.exited, { code: 0, signal: null }, sup.plain.join('\n'))
    // The supervisor's own line (the hub, a child, logs one too, with its service).
    const own = sup.records.filter((r) => r.msg === 'shutting down' && r.service === undefined)
    assert.deepEqual(own.map((r) => r['signal']), [signals[0]])
    assert.equal(sup.records.some((r) => r.msg.startsWith('second signal')), false, 'the echo is not a second signal')
    assert.ok(sup.records.some((r) => r.msg === 'stopped'))
    await waitGone(pids, 30_000)
  })
}

test('its parent SIGKILLed: trinity start notices, stops everything gracefully and exits 0', async () => {
  const file = await oneInstanceConfig('orphan')
  // A parent that waits, as npm does; SIGKILL is what no parent can forward.
  // The channel passes through the shell: the signal names the supervisor's own pid, not the shell's.
  const parent = spawn('sh', ['-c', `"${process.execPath}" "${CLI}" start --config "${file}"; exit 0`], { cwd: ROOT, stdio: READY_STDIO })
  cleanups.push(() => parent.kill('SIGKILL'))
  const ready = waitForReady(parent, 'supervisor', 60_000)
  const records: LogRecord[] = []
  let rest = ''
  parent.stdout?.on('data', (d: Buffer) => {
    rest += d.toString()
    const lines = rest.split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) if (line.startsWith('{')) records.push(JSON.parse(line) as LogRecord)
  })
  const signal = await ready
  assert.notEqual(signal.pid, parent.pid)
  const pids = [signal.pid, ...signal.children.flatMap((c) => (c.pid === null ? [] : [c.pid]))]
  assert.equal(pids.length, 3, JSON.stringify(signal.children))
  cleanups.push(() => { for (const p of pids) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } } })
  parent.kill('SIGKILL')
  await waitFor(() => records.some((r) => r.msg === 'stopped'), 60_000, 'the supervisor to stop')
  assert.ok(records.some((r) => r.msg === 'parent process exited: stopping'))
  const c1 = records.find((r) => r.msg === 'child stopped' && r.service === 'c1')
  assert.notEqual(c1?.['exitSignal'], 'SIGKILL', 'stopped within its grace period, not killed')
  await waitGone(pids, 30_000)
})
