/**
 * Servers a test starts that must not outlive it, however the test process
 * ends: a runner that kills a file at its timeout runs none of its `after`
 * cleanups. Each child runs in its own process group, tagged as the
 * supervisor tags a run, and is watched by the supervisor's lifeline
 * (src/supervisor/lifeline.ts): one per test process, which kills the groups
 * still listed when this process goes, and then whatever carries their tags.
 * A child is taken off the list when it exits.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { runTag } from '../../src/supervisor/child-env.js'
import { Lifeline } from '../../src/supervisor/lifeline.js'
import { newRunId } from '../../src/supervisor/run-reaper.js'

let lifeline: Lifeline | undefined

/** `spawn`, detached and watched; `name` goes into the run id. */
export function spawnReaped(name: string, command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const runId = newRunId(name)
  const child = spawn(command, args, { ...options, detached: true, env: { ...(options.env ?? process.env), ...runTag(runId) } })
  const pid = child.pid
  if (pid === undefined) return child
  if (lifeline === undefined) {
    lifeline = new Lifeline()
    // The test process has no shutdown to close it from: its pipe closes when the process goes.
    lifeline.unref()
  }
  const watching = lifeline
  watching.watch(pid, runId)
  child.once('exit', () => watching.release(pid))
  return child
}
