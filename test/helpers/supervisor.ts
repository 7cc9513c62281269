/**
 * `trinity start` as a child process, for tests: its unified log stream
 * parsed line by line, the PIDs of every child it started, and checks that
 * those processes are really gone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ENV } from '../../src/config/env.js'
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
  httpUrl: string
  /** PID of the lifeline, as logged in `trinity started`. */
  lifeline: number
  /** Every PID the supervisor started, from its `child starting` records. */
  childPids(): number[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export async function spawnSupervisor(configFile: string, options: { cwd?: string; readyTimeoutMs?: number } = {}): Promise<SupervisorProcess> {
  // The flags `npm start` runs it with.
  const child = spawn(process.execPath, ['--max-semi-space-size=2', CLI, 'start', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
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
  child.stdout.on('data', onData)
  child.stderr.on('data', (d: Buffer) => plain.push(d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const proc: SupervisorProcess = {
    child, records, plain, httpUrl: '', lifeline: 0, exited,
    childPids: () => records.flatMap((r) => (r.msg === 'child starting' && typeof r.childPid === 'number' ? [r.childPid] : [])),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
  try {
    await waitFor(() => records.some((r) => r.msg === 'trinity started') || child.exitCode !== null, options.readyTimeoutMs ?? 60_000, 'trinity started')
  } catch (err) {
    await proc.stop('SIGKILL')
    throw new Error(`${(err as Error).message}\n${records.map((r) => JSON.stringify(r)).join('\n')}\n${plain.join('\n')}`)
  }
  if (child.exitCode !== null) throw new Error(`supervisor exited with ${child.exitCode}:\n${records.map((r) => JSON.stringify(r)).join("\n")}\n${plain.join("\n")}`)
  const started = records.find((r) => r.msg === 'trinity started')
  proc.httpUrl = String(started?.['http'])
  proc.lifeline = Number(started?.['lifeline'])
  return proc
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
