/**
 * One bridge per workdir: a second one would race the first on the clone.
 *
 * The lock is a file holding the holder's pid, created atomically: the pid is
 * written to a private temp file first, which is then hard-linked to the lock's
 * name. link(2) fails with EEXIST if the name exists, so of two bridges that
 * start at the same moment exactly one gets the lock, and nobody ever reads a
 * half-written one. (Checking whether the file exists and then writing it, as
 * before, let both pass the check.)
 *
 * A lock whose pid is dead (a bridge killed with SIGKILL) is stale, and is
 * removed under a second lock, `<file>.break`, taken the same way: whoever
 * holds it reads the lock again and removes it only if it is still the stale
 * one, so a lock taken over meanwhile is never touched. (Renaming the stale
 * lock aside, as before, could move a new holder's lock aside when two found
 * the same stale one, and a third could take the name while it was away: two
 * holders, seen once under load.) A contender that finds `.break` held waits
 * a few ms and looks again; a `.break` whose pid is dead is removed. A pid
 * equal to ours is live only if this process holds the lock (two startBridge
 * calls in one process); otherwise it is an old lock from a pid that was
 * reused (a container restarted).
 */
import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { TrinityError } from '../../src/errors.js'

/** Lock files this process holds. */
const held = new Set<string>()

/** How long contenders may keep handing a stale lock around before giving up. */
const TAKE_TIMEOUT_MS = 5000
const BREAK_WAIT_MS = 5

class PidLockHeldError extends TrinityError {
  override readonly name = 'PidLockHeldError'
  constructor(readonly holder: number, readonly file: string) {
    super('TRINITY_ERR_WORKDIR_LOCKED', `another bridge (pid ${holder}) uses this workdir (${file})`)
  }
}

/** Takes the lock at `file`, or throws PidLockHeldError naming the live holder. Returns the release. */
export function takePidLock(file: string): () => void {
  const mine = String(process.pid)
  const temp = `${file}.${mine}.${randomBytes(6).toString('hex')}.tmp`
  writeFileSync(temp, mine)
  try {
    const deadline = Date.now() + TAKE_TIMEOUT_MS
    while (Date.now() < deadline) {
      if (tryLink(temp, file)) {
        held.add(file)
        return () => release(file, mine)
      }
      const content = read(file)
      if (content === undefined) continue // released or broken meanwhile: try again
      const holder = pidIn(content)
      if (holder !== undefined && live(holder, file)) throw new PidLockHeldError(holder, file)
      breakStale(file, content, temp)
    }
    throw new Error(`could not take the bridge's pid lock ${file} within ${TAKE_TIMEOUT_MS} ms: it kept changing hands`)
  } finally {
    rmSync(temp, { force: true })
  }
}

function release(file: string, mine: string): void {
  if (!held.delete(file)) return
  if (read(file) === mine) rmSync(file, { force: true })
}

/** Removes the lock at `file` if it still holds `stale`, under `<file>.break`. */
function breakStale(file: string, stale: string, temp: string): void {
  const breaker = `${file}.break`
  if (!tryLink(temp, breaker)) {
    // Another contender is breaking it; its `.break` is stale only if its pid is dead.
    const content = read(breaker)
    const holder = content === undefined ? undefined : pidIn(content)
    if (content !== undefined && (holder === undefined || !live(holder, breaker))) removeIfStill(breaker, content)
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BREAK_WAIT_MS)
    return
  }
  try {
    removeIfStill(file, stale)
  } finally {
    rmSync(breaker, { force: true })
  }
}

function removeIfStill(file: string, content: string): void {
  if (read(file) === content) rmSync(file, { force: true })
}

function tryLink(from: string, to: string): boolean {
  try {
    linkSync(from, to)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** The pid a lock names; undefined for anything else (an empty or garbled file is stale). */
function pidIn(content: string): number | undefined {
  const pid = Number(content.trim())
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

function live(pid: number, file: string): boolean {
  if (pid === process.pid) return held.has(file)
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
