/**
 * The exec adapter: any command-line program is an instance (`adapter: exec`).
 * For each task assigned to one, the hub starts its `command` (with `args`, no
 * shell unless `shell: true`) in a process group of its own, writes the task
 * as JSON (`{id, type, content, priority, attempt}`) to its stdin and closes
 * it, and sets TRINITY_TASK_* in its environment. Exit 0 completes the task
 * with stdout (JSON if it parses, else the text without its final newline);
 * any other exit, or a signal, fails it with the exit status and the last
 * stderr lines; every stderr line is logged with the instance and the task.
 * Reports go through the same path as MQTT reports (as the HTTP adapter's
 * do), so leases, retries and stale-report protection apply unchanged.
 *
 * Ending a run always means its whole process group: a shell's or a
 * script's children go with it. SIGTERM first, SIGKILL after the instance's
 * `stopTimeout` (the BullMQ child-pool habit), on cancel, on a timeout (the
 * lease: a command cannot renew it) and at hub stop, which waits for them.
 * When the command exits by itself, what it left behind in its group is
 * killed at once: a run leaves no process after it.
 *
 * Bounds: stdout over `limits.maxPayload` fails the task (a report over MQTT
 * would be refused), as does output nesting deeper than `limits.maxDepth`
 * (issue #14); the error keeps the last 20 stderr lines, at most 4 KB.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { InboxFrame } from '../contract/payloads/inbox.js'
import type { Report } from '../contract/payloads/task.js'
import { tooDeepField, tooDeepReason } from '../contract/payloads/validate.js'
import { ENV } from '../config/env.js'
import { parseDuration } from '../config/duration.js'
import type { InstanceConfig } from '../config/schema.js'
import { formatSize } from '../config/size.js'
import type { Logger } from '../log.js'

/** How one exec instance's command runs. */
export interface ExecCommand {
  readonly command: string
  readonly args: readonly string[]
  readonly shell: boolean
  readonly cwd: string | undefined
  readonly env: Readonly<Record<string, string>>
  /** SIGTERM, then SIGKILL after this. */
  readonly graceMs: number
}

const DEFAULT_GRACE_MS = 5000
/** The error keeps this much of the end of stderr. */
const STDERR_TAIL_LINES = 20
const STDERR_TAIL_BYTES = 4096
/** TRINITY_TASK_CONTENT is left out above this (stdin has it whole): one environment string may not exceed 128 KB on Linux. */
const CONTENT_ENV_MAX = 64 * 1024
/** After SIGKILL, how long hub stop still waits for a run's exit. */
const STOP_MARGIN_MS = 2000
/** Neither the hub's bus secret nor the validated config (broker passwords) reaches a command. */
const HUB_ONLY_ENV: readonly string[] = [ENV.hubSecret, ENV.resolvedConfig]

/** The command of an `adapter: exec` instance, or null for any other. */
export function execCommandOf(instance: InstanceConfig): ExecCommand | null {
  if (instance.adapter !== 'exec' || instance.command === undefined) return null
  return {
    command: instance.command,
    args: instance.args ?? [],
    shell: instance.shell === true,
    cwd: instance.cwd,
    env: instance.env ?? {},
    graceMs: instance.stopTimeout === undefined ? DEFAULT_GRACE_MS : parseDuration(instance.stopTimeout),
  }
}

export interface ExecAdapterDeps {
  /** Applies a report; false when the scheduler did not (stale: cancelled or reassigned meanwhile). */
  report: (instanceId: string, report: Report) => boolean
  /** `limits.maxPayload`: the most stdout a run may write. */
  maxPayload: number
  /** `limits.maxDepth`. */
  maxDepth: number
  log: Logger
}

type TaskFrame = Extract<InboxFrame, { kind: 'task' }>

interface Run {
  readonly instanceId: string
  readonly frame: TaskFrame
  readonly child: ChildProcess
  readonly graceMs: number
  /** Resolves once the command has exited (or could not start) and its group is gone. */
  readonly exited: Promise<void>
  /** The outcome is decided (reported, or nothing more to report): later events change nothing. */
  settled: boolean
  killTimer: NodeJS.Timeout | undefined
}

export class ExecAdapter {
  /** Runs by lease token, as the cancel frame names them. */
  private readonly runs = new Map<string, Run>()
  private stopping = false

  constructor(private readonly deps: ExecAdapterDeps) {}

  deliver(instanceId: string, command: ExecCommand, frame: InboxFrame): void {
    switch (frame.kind) {
      case 'task':
        // After the dispatch that assigned it has returned: reports re-enter the scheduler.
        queueMicrotask(() => this.start(instanceId, command, frame))
        return
      case 'cancel': {
        const run = this.runs.get(frame.leaseToken)
        if (run === undefined) return
        run.settled = true // cancelled: the hub already knows
        this.terminate(run)
        return
      }
      case 'ping':
      case 'message':
        return // the hub runs this instance itself: nothing to ping; a command has no inbox for messages
    }
  }

  /** Hub stop: every running command is signalled (SIGTERM, SIGKILL after its grace) and awaited; no report follows. */
  async stop(): Promise<void> {
    this.stopping = true
    const runs = [...this.runs.values()]
    for (const run of runs) {
      run.settled = true
      this.terminate(run)
    }
    // Bounded: SIGKILL ends any process but one stuck in the kernel, which must not hold the hub's stop.
    await Promise.all(runs.map((run) => Promise.race([run.exited, delay(run.graceMs + STOP_MARGIN_MS)])))
  }

  private start(instanceId: string, command: ExecCommand, frame: TaskFrame): void {
    if (this.stopping) return
    const base = { taskId: frame.task.id, leaseToken: frame.leaseToken }
    // The lease runs from the `started` report: the timeout counts from before it, so it comes
    // first and its reason (not the lease sweep's `lease expired`) is the one recorded.
    const startedAt = Date.now()
    // Not applied: cancelled (or taken back) between the assignment and now; nothing to run.
    if (!this.deps.report(instanceId, { ...base, state: 'started' })) return
    const log = this.deps.log.child({ instance: instanceId, taskId: frame.task.id })
    const [file, args] = command.shell ? ['/bin/sh', ['-c', command.command, instanceId, ...command.args]] : [command.command, [...command.args]]
    let child: ChildProcess
    try {
      child = spawn(file, args, { cwd: command.cwd, env: this.environment(instanceId, command, frame), detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    } catch (err) {
      // Refused before any process exists (a NUL byte in an argument or `env`).
      this.deps.report(instanceId, { ...base, state: 'failed', error: `could not start ${describe(command)}: ${(err as Error).message}` })
      return
    }
    let exitedResolve: () => void = () => undefined
    const exited = new Promise<void>((resolve) => { exitedResolve = resolve })
    const run: Run = { instanceId, frame, child, graceMs: command.graceMs, exited, settled: false, killTimer: undefined }
    this.runs.set(frame.leaseToken, run)
    const finish = (report: Report | null): void => {
      if (run.settled) return
      run.settled = true
      if (report === null || this.stopping) return
      log.debug({ state: report.state }, 'exec adapter report')
      this.deps.report(instanceId, report)
    }
    const fail = (error: string): void => finish({ ...base, state: 'failed', error })

    const stdout: Buffer[] = []
    let stdoutBytes = 0
    child.stdout?.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length
      if (stdoutBytes <= this.deps.maxPayload) { stdout.push(chunk); return }
      if (run.settled) return
      fail(`${describe(command)}: stdout is over limits.maxPayload, ${formatSize(this.deps.maxPayload)}`)
      this.terminate(run)
    })
    const stderr = new StderrTail()
    if (child.stderr !== null) {
      createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
        stderr.push(line)
        if (line.trim() !== '') log.warn({ stream: 'stderr' }, line)
      })
    }
    // A command that does not read its stdin closes it early: EPIPE is no failure of the run.
    child.stdin?.on('error', () => undefined)
    child.stdin?.end(JSON.stringify({ ...frame.task, attempt: frame.attempt }))

    const timeout = setTimeout(() => {
      fail(`${describe(command)}: no result within ${frame.leaseMs} ms (tasks.lease)${stderr.suffix()}`)
      this.terminate(run)
    }, Math.max(0, frame.leaseMs - (Date.now() - startedAt)))

    child.on('error', (err) => {
      // spawn failed (no such program, cwd missing): no process, so no exit event follows.
      if (child.pid !== undefined) return
      clearTimeout(timeout)
      this.runs.delete(frame.leaseToken)
      fail(`could not start ${describe(command)}: ${err.message}`)
      exitedResolve()
    })
    // 'exit', not 'close': a grandchild may hold the pipes open after the command died.
    child.once('exit', (code, signal) => {
      clearTimeout(timeout)
      clearTimeout(run.killTimer)
      // Whatever the command left running in its group goes with it.
      killGroup(child, 'SIGKILL')
      this.runs.delete(frame.leaseToken)
      exitedResolve()
      // Its output is complete once the pipes close; they do at once now that the group is gone,
      // unless something outside the group holds them: then what has arrived is the output.
      let closed = false
      const settle = (): void => {
        if (closed) return
        closed = true
        clearTimeout(drain)
        if (code !== 0 || signal !== null) {
          const status = signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`
          return fail(`${describe(command)} ${status}${stderr.suffix()}`)
        }
        finish(this.completed(base, command, Buffer.concat(stdout).toString('utf8')))
      }
      const drain = setTimeout(() => { child.stdout?.destroy(); child.stderr?.destroy(); settle() }, run.graceMs)
      child.once('close', settle)
      if (child.stdout?.closed !== false && child.stderr?.closed !== false) settle()
    })
  }

  /** Exit 0: the output, JSON if stdout parses as JSON, else its text without the final newline. */
  private completed(base: { taskId: string; leaseToken: string }, command: ExecCommand, text: string): Report {
    let output: unknown = text.replace(/\r?\n$/, '')
    try { output = JSON.parse(text) } catch { /* plain text is the output */ }
    const tooDeep = tooDeepField({ output }, this.deps.maxDepth)
    return tooDeep === null
      ? { ...base, state: 'completed', output }
      : { ...base, state: 'failed', error: `the stdout of ${describe(command)}: ${tooDeepReason(tooDeep, this.deps.maxDepth)}` }
  }

  private environment(instanceId: string, command: ExecCommand, frame: TaskFrame): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env }
    for (const name of HUB_ONLY_ENV) delete env[name]
    env[ENV.instanceId] = instanceId
    env[ENV.taskId] = frame.task.id
    env[ENV.taskType] = frame.task.type
    env[ENV.taskAttempt] = String(frame.attempt)
    const content = typeof frame.task.content === 'string' ? frame.task.content : JSON.stringify(frame.task.content)
    if (Buffer.byteLength(content) <= CONTENT_ENV_MAX && !content.includes('\0')) env[ENV.taskContent] = content
    return { ...env, ...command.env }
  }

  /** SIGTERM to the run's group, SIGKILL after its grace if it has not exited by then. */
  private terminate(run: Run): void {
    if (run.child.pid === undefined || run.child.exitCode !== null || run.child.signalCode !== null || run.killTimer !== undefined) return
    killGroup(run.child, 'SIGTERM')
    run.killTimer = setTimeout(() => killGroup(run.child, 'SIGKILL'), run.graceMs)
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try { process.kill(-child.pid, signal) } catch { /* the group is gone */ }
}

function describe(command: ExecCommand): string {
  return command.shell ? `sh -c ${JSON.stringify(command.command)}` : JSON.stringify(command.command)
}

/** The last lines of stderr, bounded in lines and bytes, for a failure's error. */
class StderrTail {
  private readonly lines: string[] = []
  private bytes = 0

  push(line: string): void {
    this.lines.push(line)
    this.bytes += Buffer.byteLength(line) + 1
    while (this.lines.length > STDERR_TAIL_LINES || (this.bytes > STDERR_TAIL_BYTES && this.lines.length > 1)) {
      this.bytes -= Buffer.byteLength(this.lines.shift() ?? '') + 1
    }
  }

  /** `: ` and the lines, or nothing when stderr was empty. */
  suffix(): string {
    const text = this.lines.join('\n').trim()
    if (text === '') return ''
    // One line longer than the bound keeps its end.
    return `: ${Buffer.byteLength(text) > STDERR_TAIL_BYTES ? text.slice(-STDERR_TAIL_BYTES) : text}`
  }
}
