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
 * A lock whose pid is dead (a bridge killed with SIGKILL) is stale: it is
 * renamed aside (rename(2) is atomic, so of two that try only one gets it) and
 * the take is tried again. The one renamed aside is read again: if it is no
 * longer the stale one (another process took the lock over in between), it is
 * linked back. A pid equal to ours is live only if this process holds the
 * lock (two startBridge calls in one process); otherwise it is an old lock
 * from a pid that was reused (a container restarted).
 */
import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'

/** Lock files this process holds. */
const held = new Set<string>()

const ATTEMPTS = 20

class PidLockHeldError extends Error {
  override readonly name = 'PidLockHeldError'
  constructor(readonly holder: number, readonly file: string) {
    super(`another bridge (pid ${holder}) uses this workdir (${file})`)
  }
}

/** Takes the lock at `file`, or throws PidLockHeldError naming the live holder. Returns the release. */
export function takePidLock(file: string): () => void {
  const mine = String(process.pid)
  const temp = `${file}.${mine}.${randomBytes(6).toString('hex')}.tmp`
  writeFileSync(temp, mine)
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        linkSync(temp, file)
        held.add(file)
        return () => release(file, mine)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const content = read(file)
      if (content === undefined) continue // released or renamed aside meanwhile: try again
      const holder = pidIn(content)
      if (holder !== undefined && live(holder, file)) throw new PidLockHeldError(holder, file)
      setAside(file, content)
    }
    throw new Error(`could not take the bridge's pid lock ${file}: it changed hands ${ATTEMPTS} times`)
  } finally {
    rmSync(temp, { force: true })
  }
}

function release(file: string, mine: string): void {
  if (!held.delete(file)) return
  if (read(file) === mine) rmSync(file, { force: true })
}

/** Moves a stale lock out of the way; puts it back if what was moved is not the stale one after all. */
function setAside(file: string, stale: string): void {
  const aside = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.stale`
  try {
    renameSync(file, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // someone else moved it
    throw err
  }
  try {
    const moved = read(aside)
    if (moved !== stale && moved !== undefined) {
      const holder = pidIn(moved)
      if (holder !== undefined && live(holder, file)) {
        try { linkSync(aside, file) } catch { /* a third one took the name meanwhile: its lock stands */ }
      }
    }
  } finally {
    rmSync(aside, { force: true })
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
