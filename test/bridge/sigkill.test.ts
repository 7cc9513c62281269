/**
 * kill -9 of the bridge process mid-round, with what an interrupted round can
 * leave behind (a stale index.lock, a rebase in progress, a half-written
 * status file, a torn outbox line, a stale pid lock), and messages published
 * while it is down: the restarted bridge cleans up, its next round succeeds,
 * and every message is delivered once. Then SIGTERM exits 0.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ComputerMessage } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge } from '../../bridges/git/bridge.js'
import { READY_STDIO, waitForReady } from '../../src/ready.js'
import { ROOT, startTestHub, testConfig, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { bareRepo, git, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()
const MAIN = join(ROOT, 'dist/bridges/git/main.js')

interface Child { child: ChildProcess; output: () => string; exited: Promise<number | null>; ready: Promise<unknown> }

function spawnBridge(configFile: string, mqttUrl: string): Child {
  const child = spawn(process.execPath, [MAIN, '--config', configFile], { stdio: READY_STDIO, env: { ...process.env, TRINITY_MQTT_URL: mqttUrl } })
  const ready = waitForReady(child, 'bridge', 60_000)
  ready.catch(() => undefined) // awaited by the test; a bridge that exits first is reported there
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited })
  return { child, output: () => output, exited, ready }
}

const lines = (out: string): Record<string, unknown>[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)

test('SIGKILL mid-round, leftovers in the clone, messages sent while down: restart delivers everything once', async () => {
  const remote = bareRepo(dir.path)
  const workdir = join(dir.path, 'sync-1')
  const raw = await testConfig(join(dir.path, 'hub-1'), {
    log: { level: 'info' },
    sync: syncSection({ computer: '1', peers: ['2'], remote, workdir, interval: '150ms', jitter: '0ms' }),
  })
  const hub = await startTestHub(raw)
  cleanups.push(() => hub.stop())
  const configFile = writeConfig(dir.path, raw)
  const t = topicsFor()
  const two = await startBridge(resolve(await testConfig(join(dir.path, 'data-2'), {
    hub: { topicPrefix: 'k2' },
    sync: syncSection({ computer: '2', peers: ['1'], remote, workdir: join(dir.path, 'sync-2'), interval: '200ms' }),
  })), { mqttUrl: hub.mqttUrl })
  cleanups.push(() => two.stop())
  const receiver = await Recorder.start(hub.mqttUrl, [topicsFor('k2').computerMessage('1')])
  cleanups.push(() => receiver.stop())
  const sender = await Recorder.start(hub.mqttUrl, [])
  cleanups.push(() => sender.stop())
  const send = async (k: number): Promise<void> => { await sender.client.publishAsync(t.computerSend('2'), JSON.stringify({ id: `m-${k}`, message: `message ${k}` }), { qos: 1 }) }

  let first = spawnBridge(configFile, hub.mqttUrl)
  await first.ready.catch((err: Error) => assert.fail(`bridge ready: ${err.message}\n${first.output()}`))
  // The signal and the human line travel on different pipes: the line may be read a moment later.
  await waitFor(() => lines(first.output()).some((l) => l['msg'] === 'bridge ready'), 20_000, 'the bridge ready line')
  const ready = lines(first.output()).find((l) => l['msg'] === 'bridge ready')
  assert.equal(ready?.['service'], 'bridge', first.output())
  for (let k = 1; k <= 10; k++) await send(k)
  // Rounds run every 150 ms: kill it while they are going.
  await waitFor(() => lines(first.output()).filter((l) => l['msg'] === 'sync round done').length >= 2, 20_000, 'rounds')
  await new Promise((r) => setTimeout(r, 60))
  first.child.kill('SIGKILL')
  await first.exited

  // What a kill -9 at a worse moment leaves behind, made certain.
  const clone = join(workdir, 'repo')
  writeFileSync(join(clone, '.git', 'index.lock'), '')
  mkdirSync(join(clone, '.git', 'rebase-merge'), { recursive: true })
  writeFileSync(join(clone, '.git', 'rebase-merge', 'head-name'), 'refs/heads/main\n')
  writeFileSync(join(clone, 'coordination', 'COMPUTER_1.md'), '---\ncomputer: "1"\nsta')
  writeFileSync(join(clone, 'coordination', 'half-written.tmp'), 'x')
  appendFileSync(join(workdir, 'state', 'outbox.log'), '{"op":"add","entry":{"id":"torn')
  assert.ok(existsSync(join(workdir, 'state', 'bridge.pid')), 'the killed process left its pid lock')
  for (let k = 11; k <= 15; k++) await send(k)

  first = spawnBridge(configFile, hub.mqttUrl)
  await first.ready.catch((err: Error) => assert.fail(`restart ready: ${err.message}\n${first.output()}`))
  await waitFor(() => lines(first.output()).some((l) => l['msg'] === 'sync round done' && l['ok'] === true), 20_000, 'a good round after the restart')
  await receiver.waitFor(topicsFor('k2').computerMessage('1'), 15)
  await two.syncNow('test: again')
  await two.syncNow('test: again')
  const got = receiver.json<ComputerMessage>(topicsFor('k2').computerMessage('1'))
  assert.deepEqual(got.map((m) => m.id).sort(), Array.from({ length: 15 }, (_, i) => `m-${i + 1}`).sort(), 'each message once')

  // SIGTERM: the current round finishes, the process exits 0, and the clone is left clean.
  first.child.kill('SIGTERM')
  assert.equal(await first.exited, 0, first.output())
  assert.ok(!existsSync(join(clone, '.git', 'rebase-merge')) && !existsSync(join(clone, '.git', 'index.lock')))
  assert.equal(git(clone, 'status', '--porcelain').trim(), '')
})
