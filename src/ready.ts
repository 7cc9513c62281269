/**
 * The ready signal: how the hub, the git bridge and the supervisor (`trinity
 * start`) tell the process that started them that they are up, built and
 * read only here.
 *
 * An IPC message, not a log line: log lines are for people, and a reworded
 * message (or a log level above info) must not make a supervisor wait for a
 * readiness that already came. The parent spawns the child with an 'ipc' stdio
 * slot (`READY_STDIO`); the child, once ready, sends one `ReadySignal` and
 * disconnects (an open channel would keep both event loops alive). A child
 * started without a channel (by hand, by systemd) sends nothing and only logs
 * its human line, `trinity hub started` / `bridge ready` / `trinity started`,
 * as before.
 *
 * Versioned: a parent ignores a message whose `version` it does not know, so a
 * newer child under an older supervisor is not taken for ready with fields it
 * cannot read.
 */
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { READY_VERSION, ReadySignal } from './contract/payloads/ready.js'
import { validate } from './contract/payloads/validate.js'

// The channel must not keep a child alive that fails before it is ready (the
// hub leaves with process.exitCode = 1 and an empty event loop): unref'd from
// the start. A send still completes, as a pending write keeps the loop running.
process.channel?.unref()

export type { ReadySignal }
export type ReadyService = ReadySignal['service']

type WithoutEnvelope<S> = S extends unknown ? Omit<S, 'type' | 'version' | 'pid'> : never
/** What a process says when ready: its signal without the envelope announceReady adds. */
export type ReadyAnnouncement<S extends ReadyService = ReadyService> = WithoutEnvelope<Extract<ReadySignal, { service: S }>>

/** stdin ignored, stdout and stderr piped (the log relay), and the channel the signal comes on. */
export const READY_STDIO: StdioOptions = ['ignore', 'pipe', 'pipe', 'ipc']

/** In the child, once ready: sends the signal if a parent listens on a channel, then closes the channel. */
export function announceReady(announcement: ReadyAnnouncement): void {
  if (process.send === undefined || !process.connected) return
  const signal: ReadySignal = { type: 'trinity.ready', version: READY_VERSION, pid: process.pid, ...announcement }
  try {
    process.send(signal, undefined, {}, () => { if (process.connected) process.disconnect() })
  } catch { /* the parent is gone: nobody to tell */ }
}

/** A message from a child's channel, as a ready signal of `service`, or undefined for anything else. */
export function readySignalFrom<S extends ReadyService>(message: unknown, service: S): Extract<ReadySignal, { service: S }> | undefined {
  const checked = validate(ReadySignal, message)
  return checked.ok && checked.value.service === service ? (checked.value as Extract<ReadySignal, { service: S }>) : undefined
}

/** In the parent: resolves with the child's ready signal, rejects if it exits (or `timeoutMs` passes) first. */
export function waitForReady<S extends ReadyService>(child: ChildProcess, service: S, timeoutMs: number): Promise<Extract<ReadySignal, { service: S }>> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`${service} exited before it was ready (${child.signalCode ?? `code ${child.exitCode}`})`))
    const settle = (): void => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit) }
    const onMessage = (message: unknown): void => {
      const signal = readySignalFrom(message, service)
      if (signal !== undefined) { settle(); resolve(signal) }
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      settle()
      reject(new Error(`${service} exited before it was ready (${signal ?? `code ${code}`})`))
    }
    const timer = setTimeout(() => { settle(); reject(new Error(`${service} not ready within ${timeoutMs} ms`)) }, timeoutMs)
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}
