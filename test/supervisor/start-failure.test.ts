/**
 * A hub that cannot start (its port is taken) stops `trinity start` at once
 * with exit code 1 and the hub's own reason, instead of a minute of restarts;
 * the instances already launched are stopped with it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { CLI, ROOT, freePort, testScope, writeConfig } from '../helpers/hub.js'
import { waitGone } from '../helpers/supervisor.js'

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
  await waitGone(records.flatMap((r) => (r.msg === 'child starting' && typeof r.childPid === 'number' ? [r.childPid] : [])), 3000)
})
