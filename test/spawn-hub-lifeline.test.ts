/**
 * spawnHub's lifeline (test/helpers/reaped-spawn.ts): a test file the runner kills at
 * its timeout runs none of its `after` cleanups, and before the lifeline its
 * hubs ran on as orphans (two were found 80 minutes later, loading the rest of
 * the suite). Here the test process is SIGKILLed with its hub running: the hub
 * must go too.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT, testScope, waitFor } from './helpers/hub.js'
import { alive, waitGone } from './helpers/supervisor.js'

const { dir, cleanups } = testScope()

test('a hub spawnHub started is reaped when its test process is SIGKILLed', async () => {
  const testProcess = spawn(process.execPath, [join(ROOT, 'dist/test/fixtures/spawn-hub-and-hang.js'), dir.path], { stdio: ['ignore', 'pipe', 'inherit'] })
  cleanups.push(() => testProcess.kill('SIGKILL'))
  let out = ''
  testProcess.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await waitFor(() => /^\d+\n/.test(out) || testProcess.exitCode !== null, 60_000, 'the hub pid')
  const hubPid = Number(out.trim())
  assert.ok(hubPid > 0 && alive(hubPid), `the hub runs (said ${JSON.stringify(out)})`)
  cleanups.push(() => { try { process.kill(hubPid, 'SIGKILL') } catch { /* gone */ } })
  testProcess.kill('SIGKILL')
  await waitGone([hubPid], 30_000)
})
