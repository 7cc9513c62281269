/**
 * One supervised process: spawn it in its own process group, tagged with a
 * run id (run-reaper.ts: a `setsid` grandchild is killed with its run), split its
 * output into lines, wait for it to report ready, restart it by the restart
 * policy when it exits on its own, and stop it with SIGTERM, then SIGKILL
 * after the stop timeout. Readiness is decided outside (the ready signal of
 * src/ready.ts, a birth on the bus, a health URL): the owner calls markReady().
 * The hub and the bridge get an IPC channel for that signal ('message' events);
 * instances do not (any program can be one; they are ready by their birth).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { createInterface } from 'node:readline'
import { READY_STDIO } from '../ready.js'
import { runTag } from './child-env.js'
import type { Lifeline } from './lifeline.js'
import { newRunId, reapRun } from './run-reaper.js'
import { RestartTracker, type CrashLoopPolicy, type RestartPolicy } from './restart-policy.js'

export type { ChildState } from '../contract/payloads/supervisor.js'
import type { ChildState, SupervisedChild } from '../contract/payloads/supervisor.js'

export interface ChildSpec {
  /** Unique among the children: `hub`, `bridge`, or the instance id. */
  readonly name: string
  readonly kind: 'hub' | 'bridge' | 'instance'
  /** A shell command line, or, with `args`, an executable. */
  readonly command: string
  readonly args?: readonly string[]
  readonly cwd?: string
  readonly env?: Readonly<Record<string, string>>
}

export interface ChildOptions {
  readonly restart: RestartPolicy
  readonly crashLoop: CrashLoopPolicy
  readonly readyTimeoutMs: number
  readonly stopTimeoutMs: number
  readonly lifeline: Lifeline
  /** Extra environment for every start (the bus and hub URLs, known only once the hub runs). */
  readonly env: () => Record<string, string>
  /**
   * Give up at once (state `error`) if the very first run exits before it is
   * ready: for the hub, whose early death is a port or config problem that
   * no restart will fix.
   */
  readonly failFast?: boolean
}

export type ChildView = SupervisedChild

export interface ChildEvents {
  line: [stream: 'stdout' | 'stderr', line: string]
  state: [state: ChildState, reason: string | null]
  /** A message on the child's IPC channel (hub and bridge only). */
  message: [message: unknown]
}

/**
 * A plain command line (words and quotes only) is exec'd by the shell, so the
 * PID we watch and report is the program's own. A compound one (`&&`, pipes,
 * redirections…) runs under sh; signals go to its whole process group either way.
 */
export function shellLine(command: string): string {
  return /^[\w@%+=:,./'" -]+$/.test(command) ? `exec ${command}` : command
}

export class Child extends EventEmitter<ChildEvents> {
  state: ChildState = 'stopped'
  restarts = 0
  reason: string | null = null
  startedAt: number | null = null
  readyAt: number | null = null
  lastExit: SupervisedChild['lastExit'] = null
  nextRestartAt: number | null = null
  private proc: ChildProcess | undefined
  /** The tag of the current run (ENV.runId in its environment): what carries it is killed when the run ends. */
  private runId = ''
  private exited: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private readyTimer: NodeJS.Timeout | undefined
  private readonly tracker: RestartTracker
  private readyWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = []
  private everReady = false

  constructor(readonly spec: ChildSpec, private readonly options: ChildOptions) {
    super()
    this.tracker = new RestartTracker(options.restart, options.crashLoop)
  }

  get pid(): number | null {
    return this.proc?.pid ?? null
  }

  view(): ChildView {
    return {
      name: this.spec.name,
      kind: this.spec.kind,
      ...(this.spec.kind === 'instance' ? { instance: this.spec.name } : {}),
      pid: this.state === 'starting' || this.state === 'running' || this.state === 'stopping' ? this.pid : null,
      state: this.state,
      restarts: this.restarts,
      startedAt: this.startedAt,
      readyAt: this.readyAt,
      lastExit: this.lastExit,
      nextRestartAt: this.nextRestartAt,
      reason: this.reason,
    }
  }

  /** Starts the process; resolves once it is ready, rejects if it exits or times out first. */
  start(): Promise<void> {
    clearTimeout(this.timer)
    this.nextRestartAt = null
    const ready = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }))
    this.spawnOnce()
    return ready
  }

  /** The owner saw the readiness signal for this run. */
  markReady(): void {
    if (this.state !== 'starting') return
    clearTimeout(this.readyTimer)
    this.readyAt = Date.now()
    this.everReady = true
    this.setState('running', null)
    for (const w of this.readyWaiters.splice(0)) w.resolve()
  }

  /** A manual restart: clears a crash loop and any pending backoff. */
  async restart(): Promise<void> {
    this.tracker.reset()
    await this.stop()
    void this.start().catch(() => undefined)
  }

  /** Kill a run that is unhealthy; it counts as a crash (backoff, crash loop). */
  recycle(reason: string): void {
    if (this.state !== 'running' || this.proc === undefined) return
    this.reason = reason
    this.signal('SIGTERM')
    const proc = this.proc
    setTimeout(() => { if (this.proc === proc && proc.exitCode === null && proc.signalCode === null) this.signal('SIGKILL') }, this.options.stopTimeoutMs).unref()
  }

  /** SIGTERM, then SIGKILL after the stop timeout; no restart. */
  async stop(): Promise<void> {
    clearTimeout(this.timer)
    clearTimeout(this.readyTimer)
    this.nextRestartAt = null
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`${this.spec.name}: stopped before it was ready`))
    if (this.proc === undefined || this.state === 'stopped' || this.state === 'backoff' || this.state === 'error') {
      this.setState('stopped', null)
      return
    }
    this.setState('stopping', null)
    this.signal('SIGTERM')
    const kill = setTimeout(() => this.signal('SIGKILL'), this.options.stopTimeoutMs)
    await this.exited
    clearTimeout(kill)
  }

  private spawnOnce(): void {
    const { spec, options } = this
    this.runId = newRunId(spec.name)
    const env = { ...process.env, ...options.env(), ...spec.env, ...runTag(this.runId) }
    const stdio: StdioOptions = spec.kind === 'instance' ? ['ignore', 'pipe', 'pipe'] : READY_STDIO
    const proc: ChildProcess = spec.args === undefined
      ? spawn(shellLine(spec.command), { shell: true, cwd: spec.cwd, env, detached: true, stdio })
      : spawn(spec.command, [...spec.args], { cwd: spec.cwd, env, detached: true, stdio })
    this.proc = proc
    proc.on('message', (message) => { if (this.proc === proc) this.emit('message', message) })
    this.startedAt = Date.now()
    this.readyAt = null
    this.reason = null
    const pgid = proc.pid
    if (pgid !== undefined) options.lifeline.watch(pgid, this.runId)
    for (const stream of ['stdout', 'stderr'] as const) {
      const lines = createInterface({ input: proc[stream]!, crlfDelay: Infinity })
      lines.on('line', (line) => this.emit('line', stream, line))
    }
    this.exited = new Promise((resolve) => {
      proc.once('error', (err) => {
        // spawn failed (cwd missing, executable not found): the same as an exit
        if (proc.pid === undefined) this.onExit(proc, null, null, err.message, resolve)
      })
      // 'exit', not 'close': a grandchild may hold the pipes open after its parent died.
      proc.once('exit', (code, signal) => this.onExit(proc, code, signal, null, resolve))
    })
    this.setState('starting', null)
    this.readyTimer = setTimeout(() => {
      if (this.proc !== proc || this.state !== 'starting') return
      this.reason = `not ready within ${options.readyTimeoutMs} ms`
      this.signal('SIGKILL')
    }, options.readyTimeoutMs)
  }

  private onExit(proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null, spawnError: string | null, resolve: () => void): void {
    if (this.proc !== proc) return resolve()
    clearTimeout(this.readyTimer)
    if (proc.pid !== undefined) this.options.lifeline.release(proc.pid)
    // The group may hold grandchildren of a shell command line: take them down too.
    if (proc.pid !== undefined) { try { process.kill(-proc.pid, 'SIGKILL') } catch { /* already gone */ } }
    // And what left the group (setsid) but still carries this run's tag.
    reapRun(this.runId)
    const now = Date.now()
    this.lastExit = { code, signal, at: now }
    resolve()
    if (this.state === 'stopping' || this.state === 'stopped') {
      this.setState('stopped', null)
      return
    }
    const why = spawnError ?? this.reason ?? (signal !== null ? `killed by ${signal}` : `exited with code ${code}`)
    const uptime = this.readyAt === null ? 0 : now - this.readyAt
    const decision = this.options.failFast === true && !this.everReady
      ? { action: 'give-up' as const, exits: 1, windowMs: 0 }
      : this.tracker.onExit(now, uptime)
    const wasStarting = this.state === 'starting'
    if (decision.action === 'give-up') {
      this.setState('error', decision.windowMs === 0 ? `exited before it was ready: ${why}` : `crash loop: ${decision.exits} exits within ${decision.windowMs} ms (last: ${why})`)
    } else {
      this.restarts++
      this.nextRestartAt = now + decision.delayMs
      this.setState('backoff', why)
      this.timer = setTimeout(() => { this.nextRestartAt = null; this.spawnOnce() }, decision.delayMs)
    }
    if (wasStarting && decision.action === 'give-up') {
      for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`${this.spec.name}: ${this.reason}`))
    }
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.proc?.pid
    if (pid === undefined) return
    try { process.kill(-pid, signal) } catch { /* already gone */ }
  }

  private setState(state: ChildState, reason: string | null): void {
    const changed = state !== this.state || reason !== this.reason
    this.state = state
    this.reason = reason
    if (changed) this.emit('state', state, reason)
  }
}
