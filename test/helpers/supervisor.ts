/**
 * `trinity start` as a child process, for tests: ready on its ready signal
 * (src/ready.ts), its unified log stream parsed line by line, the PIDs of
 * every child it started, and checks that those processes are really gone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ENV } from '../../src/config/env.js'
import { READY_STDIO, waitForReady, type ReadySignal } from '../../src/ready.js'
import { CLI, ROOT, freePort, waitFor, writeConfig, type ConfigObject } from './hub.js'

export interface LogRecord {
  level: number
  msg: string
  service?: string
  instance?: string
  childPid?: number
  [key: string]: unknown
}

export interface SupervisorProcess {
  child: ChildProcess
  records: LogRecord[]
  /** Lines that were not JSON (there should be none). */
  plain: string[]
  /** What the supervisor said when it was ready: the hub's URLs, its lifeline, every child. */
  ready: Extract<ReadySignal, { service: 'supervisor' }>
  httpUrl: string
  mqttUrl: string
  /** PID of the lifeline, from the ready signal. */
  lifeline: number
  /** Every PID the supervisor started: the children in its ready signal, and any later run from its `child starting` records. */
  childPids(): number[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export async function spawnSupervisor(configFile: string, options: { cwd?: string; readyTimeoutMs?: number } = {}): Promise<SupervisorProcess> {
  // The flags `npm start` runs it with.
  const child = spawn(process.execPath, ['--max-semi-space-size=2', CLI, 'start', '--config', configFile], {
    stdio: READY_STDIO,
    env: { ...process.env, CI: 'true' },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  })
  const records: LogRecord[] = []
  const plain: string[] = []
  let rest = ''
  const onData = (d: Buffer): void => {
    rest += d.toString()
    const lines = rest.split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      if (line.trim() === '') continue
      try { records.push(JSON.parse(line) as LogRecord) } catch { plain.push(line) }
    }
  }
  const { stdout, stderr } = child
  if (stdout === null || stderr === null) throw new Error('trinity start spawned without its output pipes')
  stdout.on('data', onData)
  stderr.on('data', (d: Buffer) => plain.push(d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const ready = waitForReady(child, 'supervisor', options.readyTimeoutMs ?? 60_000)
  const proc: Omit<SupervisorProcess, 'ready' | 'httpUrl' | 'mqttUrl' | 'lifeline' | 'childPids'> = {
    child, records, plain, exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
  let signal: SupervisorProcess['ready']
  try {
    signal = await ready
  } catch (err) {
    await proc.stop('SIGKILL')
    // Its last words, read to the end: why it did not start (an exit before ready, or the timeout).
    await new Promise<void>((resolve) => {
      if (stdout.readableEnded) return resolve()
      stdout.once('end', resolve)
      setTimeout(resolve, 5000).unref()
    })
    throw new Error(`${(err as Error).message}:\n${records.map((r) => JSON.stringify(r)).join('\n')}\n${plain.join('\n')}`)
  }
  const atReady = signal.children.flatMap((c) => (c.pid === null ? [] : [c.pid]))
  const childPids = (): number[] => [...new Set([...atReady, ...records.flatMap((r) => (r.msg === 'child starting' && typeof r.childPid === 'number' ? [r.childPid] : []))])]
  return { ...proc, ready: signal, httpUrl: signal.http, mqttUrl: signal.mqtt, lifeline: signal.lifeline ?? 0, childPids }
}

/** Running, and not a zombie waiting to be reaped. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

export async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  await waitFor(() => pids.every((p) => !alive(p)), timeoutMs, `processes ${pids.filter(alive).join(', ')} to exit`)
}

/** CPU time (user + system) a process has used, in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/**
 * config/trinity.yaml's reference fleet as a config file in `dir`: the same
 * instances and commands, on free ports, with data and workspace under `dir`.
 * `overrides` are top-level sections laid over it.
 */
export async function fleetConfigFile(dir: string, name: string, overrides: ConfigObject = {}): Promise<string> {
  const seed = parse(readFileSync(join(ROOT, 'config/trinity.yaml'), 'utf8')) as { instances: ConfigObject[] }
  const instances = await Promise.all(seed.instances.map(async (i) => {
    const env = { [ENV.workspace]: join(dir, name, 'workspace') }
    if (i['port'] === undefined) return { ...i, env }
    const port = await freePort()
    return { ...i, env, port, healthUrl: `http://127.0.0.1:${port}/health` }
  }))
  return writeConfig(dir, {
    hub: { host: '127.0.0.1', port: await freePort(), dataDir: join(dir, name) },
    broker: { host: '127.0.0.1', port: await freePort() },
    log: { level: 'info', pretty: false },
    health: { interval: '1s' },
    instances,
    ...overrides,
  }, `${name}.yaml`)
}
