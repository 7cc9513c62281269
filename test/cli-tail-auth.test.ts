/**
 * `trinity tail` against a hub with broker auth on (issue #14): it logs in
 * with --username/--password or TRINITY_MQTT_USERNAME/TRINITY_MQTT_PASSWORD
 * and prints what mosquitto_pub publishes; a refused login is said once, with
 * the broker's reason and TRINITY_ERR_BUS_LOGIN_REFUSED, and exits 1 instead
 * of retrying. Real processes, a real broker login.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { ENV } from '../src/config/env.js'
import { topicsFor } from '../src/contract/topics.js'
import type { Hub } from '../src/hub.js'
import { CLEARED, runCli } from './helpers/cli.js'
import { CLI, startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'

const dir = tempDir()
const topics = topicsFor()
const WATCHER = { username: 'watcher', password: 'watcher-secret' }
const ROOT_USER = { username: 'root', password: 'root-secret' }
const INSTANCE_USER = { username: 'c9', password: 'c9-secret' }
const children = new Set<ChildProcess>()
let hub: Hub

before(async () => {
  hub = await startTestHub(await testConfig(dir.path, {
    // With broker auth on, the HTTP API needs tokens too (config refuses it without).
    hub: { auth: { tokens: [{ name: 'reader', scope: 'read', token: 'tail-auth-read-token-0123456789' }] } },
    broker: { auth: { enabled: true, users: [
      { ...WATCHER, role: 'reader' },
      { ...ROOT_USER, role: 'admin' },
      { ...INSTANCE_USER, role: 'instance' },
    ] } },
  }))
})
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await hub?.stop()
  dir.remove()
})

/** `trinity tail` running, its output collected; the environment holds no login but `env`. */
function startTail(args: string[], env: Record<string, string> = {}): { child: ChildProcess; stdout: () => string; stderr: () => string } {
  const base = { ...process.env }
  for (const name of CLEARED) delete base[name]
  const child = spawn(process.execPath, [CLI, 'tail', '--mqtt', hub.mqttUrl, ...args], { cwd: dir.path, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  return { child, stdout: () => stdout, stderr: () => stderr }
}

/**
 * Publishes `marker` by mosquitto_pub (as root) until the tail prints it: tail
 * says nothing once subscribed, so the first publishes may precede its SUBSCRIBE.
 */
async function seenByTail(tail: ReturnType<typeof startTail>, marker: string): Promise<string> {
  const port = new URL(hub.mqttUrl).port
  // The same id every time: the hub takes the repeats as one task.
  const payload = JSON.stringify({ id: marker, type: 'general', content: marker })
  const line = (): string | undefined => tail.stdout().split('\n').find((l) => l.includes(marker))
  await waitFor(async () => {
    if (line() !== undefined || tail.child.exitCode !== null) return true
    // Async: the hub runs in this process and must keep serving while mosquitto_pub waits for its PUBACK.
    await promisify(execFile)('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-q', '1', '-u', ROOT_USER.username, '-P', ROOT_USER.password,
      '-t', topics.taskSubmit, '-m', payload], { timeout: 10_000 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    return line() !== undefined
  }, 30_000, () => `tail to print ${marker} (stdout: ${tail.stdout()}; stderr: ${tail.stderr()})`)
  assert.equal(tail.child.exitCode, null, tail.stderr())
  return line() ?? ''
}

async function stopTail(tail: ReturnType<typeof startTail>): Promise<void> {
  const exited = new Promise<number | null>((resolve) => tail.child.once('exit', (code) => resolve(code)))
  tail.child.kill('SIGINT')
  assert.equal(await exited, 0, tail.stderr())
}

test('with --username and --password, tail prints what mosquitto_pub publishes', async () => {
  const tail = startTail(['--username', WATCHER.username, '--password', WATCHER.password])
  const line = await seenByTail(tail, 'tail-login-by-flags')
  assert.equal(line.slice(0, line.indexOf(' ')), topics.taskSubmit)
  assert.deepEqual(JSON.parse(line.slice(line.indexOf(' ') + 1)), { id: 'tail-login-by-flags', type: 'general', content: 'tail-login-by-flags' })
  await stopTail(tail)
})

test('with TRINITY_MQTT_USERNAME and TRINITY_MQTT_PASSWORD, the login the SDK reads, tail logs in too', async () => {
  const tail = startTail([], { [ENV.mqttUsername]: WATCHER.username, [ENV.mqttPassword]: WATCHER.password })
  await seenByTail(tail, 'tail-login-by-env')
  await stopTail(tail)
})

test('a wrong password: tail exits 1 at once with the broker\'s reason and TRINITY_ERR_BUS_LOGIN_REFUSED', async () => {
  for (const [how, args, env] of [
    ['flags', ['--username', WATCHER.username, '--password', 'not-the-password'], {}],
    ['env', [], { [ENV.mqttUsername]: WATCHER.username, [ENV.mqttPassword]: 'not-the-password' }],
  ] as const) {
    const r = await runCli(['tail', '--mqtt', hub.mqttUrl, ...args], { cwd: dir.path, env })
    assert.equal(r.code, 1, `${how}: ${JSON.stringify(r)}`)
    assert.equal(r.stdout, '', how)
    assert.match(r.stderr, /^trinity: the broker refused the login: mqtt:\/\/127\.0\.0\.1:\d+ as watcher: Connection refused: Bad username or password .*\(TRINITY_ERR_BUS_LOGIN_REFUSED\)\n$/, how)
  }
})

test('no login at all with auth on: refused the same way, and the message says there was none', async () => {
  const r = await runCli(['tail', '--mqtt', hub.mqttUrl], { cwd: dir.path })
  assert.equal(r.code, 1, JSON.stringify(r))
  assert.match(r.stderr, /the broker refused the login: mqtt:\/\/127\.0\.0\.1:\d+ without a login: Connection refused: Bad username or password .*--username and --password, or \$TRINITY_MQTT_USERNAME and \$TRINITY_MQTT_PASSWORD.*\(TRINITY_ERR_BUS_LOGIN_REFUSED\)/)
})

test('a login whose role may not read the filter: tail exits 1 with TRINITY_ERR_BUS_SUBSCRIBE_REFUSED, not a silent wait', async () => {
  const r = await runCli(['tail', '--mqtt', hub.mqttUrl, '--username', INSTANCE_USER.username, '--password', INSTANCE_USER.password], { cwd: dir.path })
  assert.equal(r.code, 1, JSON.stringify(r))
  assert.match(r.stderr, /^trinity: the broker refused the subscription: mqtt:\/\/127\.0\.0\.1:\d+: c9 may not read trinity\/# \(SUBACK 0x80\).*\(TRINITY_ERR_BUS_SUBSCRIBE_REFUSED\)\n$/)
})
