/**
 * Atomic file replacement for the bridge's state: write a temp file beside
 * the target, fsync it, rename it over the target (rename is atomic on POSIX),
 * fsync the directory. A kill -9 at any point leaves the old or the new file,
 * never half of one.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

export function writeFileAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w')
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
  fsyncDir(dirname(file))
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try { fsyncSync(fd) } finally { closeSync(fd) }
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  }
}
