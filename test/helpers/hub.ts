/**
 * Test fixtures: temp dirs, free ports, a hub in this process or as a child
 * process (for SIGKILL), a real Mosquitto, and polling helpers. Everything
 * binds 127.0.0.1 and is cleaned up by the caller's `after` hooks.
 */
import type { ChildProcess } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { after } from 'node:test'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import { stringify } from 'yaml'
import type { HubError } from '../../src/contract/payloads/hub.js'
import { topicsFor } from '../../src/contract/topics.js'
import { TEST_ENV } from '../../src/config/env.js'
import { parseConfig } from '../../src/config/load.js'
import { startHub, type Hub } from '../../src/hub.js'
import { HUB_NODE_ARGS } from '../../src/hub-node-args.js'
import { READY_STDIO, waitForReady } from '../../src/ready.js'
import { silentLogger } from '../../src/log.js'
import { spawnReaped } from './reaped-spawn.js'

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const CLI = join(ROOT, 'dist/src/cli/main.js')

export function tempDir(prefix = 'trinity-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

/**
 * A test file's scratch space: a temp dir, and cleanups run in reverse order
 * after the file's tests (then the dir is removed). Call at module level.
 */
export function testScope(): { dir: { path: string; remove: () => void }; cleanups: (() => unknown)[] } {
  const dir = tempDir()
  const cleanups: (() => unknown)[] = []
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
    dir.remove()
  })
  return { dir, cleanups }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export type ConfigObject = Record<string, unknown>

/**
 * A config for tests: loopback, ephemeral ports (port 0: the hub reports what
 * it bound, so parallel tests never race for a port), a temp data dir, fast
 * timers. Deep-merges `overrides`.
 */
export async function testConfig(dataDir: string, overrides: ConfigObject = {}): Promise<ConfigObject> {
  const base: ConfigObject = {
    hub: { host: '127.0.0.1', port: 0, dataDir, statsInterval: '200ms' },
    broker: { mode: 'embedded', host: '127.0.0.1', port: 0 },
    log: { level: 'warn', pretty: false },
    // A ping answered late on a loaded machine must not take an instance (and its task) away
    // under a test about something else; health tests set their own thresholds.
    health: { interval: '500ms', timeout: '5s', degradedAfter: '3s', missesBeforeOffline: 2, passesBeforeOnline: 1 },
    tasks: { lease: '5s', maxAttempts: 3, retryBackoff: { base: '50ms', factor: 2, max: '500ms' } },
  }
  return merge(base, overrides)
}

function merge(a: ConfigObject, b: ConfigObject): ConfigObject {
  const out: ConfigObject = { ...a }
  for (const [key, value] of Object.entries(b)) {
    const current = out[key]
    out[key] = isPlain(value) && isPlain(current) ? merge(current, value) : value
  }
  return out
}

function isPlain(v: unknown): v is ConfigObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

export function writeConfig(dir: string, config: ConfigObject, name = 'trinity.yaml'): string {
  const file = join(dir, name)
  writeFileSync(file, stringify(config))
  return file
}

/** A hub in this process. */
export async function startTestHub(config: ConfigObject): Promise<Hub> {
  return startHub(parseConfig(stringify(config), 'test.yaml'), silentLogger())
}

export interface HubProcess {
  child: ChildProcess
  httpUrl: string
  mqttUrl: string
  output: () => string
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * `trinity hub --config file` as a child process; resolves once its HTTP API
 * answers, with the URLs of its ready signal (src/ready.ts).
 */
export async function spawnHub(configFile: string, options: { nodeArgs?: readonly string[]; env?: Record<string, string> } = {}): Promise<HubProcess> {
  // The hub's own flags (as `trinity start` runs it), then any the run or the test adds.
  const nodeArgs = [...HUB_NODE_ARGS, ...(process.env[TEST_ENV.hubNodeArgs] ?? '').split(' ').filter((a) => a !== ''), ...(options.nodeArgs ?? [])]
  // Reaped with this process, however it ends (reaped-spawn.ts).
  const child = spawnReaped('hub', process.execPath, [...nodeArgs, CLI, 'hub', '--config', configFile], { stdio: READY_STDIO, env: { ...process.env, CI: 'true', ...options.env } })
  const ready = waitForReady(child, 'hub', 60_000)
  let output = ''
  const logDir = process.env[TEST_ENV.hubLogDir]
  const logFile = logDir === undefined ? undefined : join(logDir, `${basename(configFile)}-${child.pid}.log`)
  const collect = (d: Buffer): void => {
    output += d.toString()
    if (logFile !== undefined) appendFileSync(logFile, d)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const proc: HubProcess = {
    child,
    httpUrl: '',
    mqttUrl: '',
    output: () => output,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
  try {
    const started = await ready
    proc.httpUrl = started.http
    proc.mqttUrl = started.mqtt
    await waitFor(async () => (await fetch(`${proc.httpUrl}/health`).then((r) => r.ok).catch(() => false)) || child.exitCode !== null, 20_000, 'hub to answer')
  } catch (err) {
    await proc.kill()
    throw new Error(`${(err as Error).message}\n${output}`)
  }
  if (child.exitCode !== null) throw new Error(`hub exited with ${child.exitCode}:\n${output}`)
  return proc
}

/**
 * A wait is a liveness bound, never a speed assertion: never shorter than
 * this, whatever a test asks, so a loaded machine makes the suite slower, not
 * red (speed budgets are `npm run bench`'s).
 */
export const LIVENESS_FLOOR_MS = 60_000

/** `what` names the condition in the error; a function is read at the timeout, so it can say how far things got. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what: string | (() => string) = 'condition'): Promise<void> {
  const bound = Math.max(timeoutMs, LIVENESS_FLOOR_MS)
  const deadline = Date.now() + bound
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${bound} ms waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export async function http<T = unknown>(base: string, method: string, path: string, body?: unknown, raw?: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${path}`, {
    method,
    ...(body !== undefined || raw !== undefined ? { headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) } : {}),
  })
  const text = await response.text()
  return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T }
}

export interface Mosquitto {
  url: string
  port: number
  /** Sends `signal` to the broker (SIGSTOP, SIGCONT, SIGKILL), as a hung or dead broker. */
  signal(signal: NodeJS.Signals): void
  stop(): Promise<void>
}

/** A real Mosquitto on a free loopback port (retried: another process may take the port first). */
export async function startMosquitto(dir: string): Promise<Mosquitto> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMosquittoOnce(dir, await freePort())
    } catch (err) {
      if (attempt >= 3) throw err
    }
  }
}

async function startMosquittoOnce(dir: string, port: number): Promise<Mosquitto> {
  const conf = join(dir, `mosquitto-${port}.conf`)
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`)
  const child = spawnReaped('mosquitto', '/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const { default: mqtt } = await import('mqtt')
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${err}`)
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 500 }).catch(() => undefined)
    await client?.endAsync()
    return client !== undefined
  }, 10_000, 'mosquitto')
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    signal(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT')
        child.kill('SIGTERM')
      }
      await exited
    },
  }
}

/** A bus client on `mqttUrl` collecting what the hub says on `{prefix}/hub/errors`; ended by `cleanups`. */
export async function watchHubErrors(mqttUrl: string, cleanups: (() => unknown)[], prefix = 'trinity'): Promise<{ client: MqttClient; errors: HubError[] }> {
  const client = await mqtt.connectAsync(mqttUrl, { reconnectPeriod: 0 })
  cleanups.push(() => client.endAsync())
  const errors: HubError[] = []
  client.on('message', (_topic, payload) => errors.push(JSON.parse(payload.toString()) as HubError))
  await client.subscribeAsync(topicsFor(prefix).hubErrors, { qos: 0 })
  return { client, errors }
}
