/**
 * What is left of a run once it ends. The supervisor kills a child's process
 * group, but a grandchild that calls `setsid` (a daemonising script, `nohup`
 * wrappers, some agents' tool runners) leaves the group and survived every
 * restart, one orphan per run (issue #14). Every process inherits its parent's
 * environment, setsid or not, so each run is tagged with ENV.runId
 * (child-env.ts) and, when it ends, the processes still carrying the tag are
 * found in /proc/<pid>/environ and killed: by the supervisor (child.ts), or,
 * once it is killed, by its lifeline (lifeline.ts, reap-main.ts). No native code: Linux's /proc only;
 * elsewhere (no /proc) this finds nothing and the group kill is all there is.
 *
 * What it cannot catch: a process that exec's with a scrubbed environment
 * (`env -i`), or one of another user (its environ is unreadable).
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { ENV } from '../config/env.js'

/** A fresh tag for one run of one child: unique across runs and supervisors. */
export function newRunId(name: string): string {
  return `${process.pid}.${name}.${randomBytes(6).toString('hex')}`
}

/** PIDs (not this process) whose environment carries `runId` as ENV.runId. */
export function processesOfRun(runId: string): number[] {
  const needle = Buffer.from(`${ENV.runId}=${runId}\0`)
  let entries: string[]
  try { entries = readdirSync('/proc') } catch { return [] }
  const found: number[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    if (pid === process.pid) continue
    let environ: Buffer
    try { environ = readFileSync(`/proc/${entry}/environ`) } catch { continue } // gone, or not ours
    // The tag is one NUL-terminated entry; at the very start or after a NUL, never inside another value.
    const at = environ.indexOf(needle)
    if (at === 0 || (at > 0 && environ[at - 1] === 0)) found.push(pid)
  }
  return found
}

/**
 * SIGKILLs every process still tagged with `runId`, a few rounds (one may
 * fork while it is being looked for). Returns the PIDs it signalled.
 */
export function reapRun(runId: string): number[] {
  const killed: number[] = []
  for (let round = 0; round < 3; round++) {
    const left = processesOfRun(runId).filter((pid) => !killed.includes(pid))
    if (left.length === 0) break
    for (const pid of left) {
      try { process.kill(pid, 'SIGKILL'); killed.push(pid) } catch { /* gone already */ }
    }
  }
  return killed
}
