/**
 * The lifeline: no orphans, even if the supervisor is SIGKILLed.
 *
 * Every child runs in its own process group. A tiny `sh` process, started
 * before any child and detached from the terminal, is told each run as it
 * starts ("+pgid runId") and ends ("-pgid") over a pipe from the supervisor.
 * It ignores signals and waits for the pipe to close, which the kernel does
 * when the supervisor dies for any reason; then it sends SIGTERM to every
 * group still listed and SIGKILL two seconds later. A grandchild that called
 * `setsid` has left its group, so last the lifeline runs the run reaper
 * (run-reaper.ts, through reap-main.ts: one Node process, only then) on the
 * run ids still listed, as the supervisor does when a run ends (issue #14).
 * A shell, not a second Node process, for the long wait: it costs about a
 * megabyte and cannot itself crash on a bug of ours. A clean shutdown empties
 * the list first, so the lifeline just exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'

/** The run reaper's process entry point: `node reap-main.js RUN_ID…`. */
const REAP_MAIN = fileURLToPath(new URL('./reap-main.js', import.meta.url))

/** What a run id may hold (newRunId: pid, child name, hex): one shell word, no `:` (the list's separator). */
const RUN_ID = /^[A-Za-z0-9._-]+$/

// $1: node, $2: reap-main.js. Entries are `pgid:runId`.
const SCRIPT = `
trap '' INT TERM HUP
runs=""
while IFS= read -r line; do
  case "$line" in
    +*) e="\${line#+}"; runs="$runs \${e%% *}:\${e#* }" ;;
    -*) g="\${line#-}"; kept=""; for x in $runs; do [ "\${x%%:*}" = "$g" ] || kept="$kept $x"; done; runs="$kept" ;;
  esac
done
[ -z "$runs" ] && exit 0
for x in $runs; do kill -TERM -"\${x%%:*}" 2>/dev/null; done
sleep 2
ids=""
for x in $runs; do kill -KILL -"\${x%%:*}" 2>/dev/null; ids="$ids \${x#*:}"; done
exec "$1" "$2" $ids
`

export class Lifeline {
  private readonly proc: ChildProcess

  constructor() {
    this.proc = spawn('/bin/sh', ['-c', SCRIPT, 'trinity-lifeline', process.execPath, REAP_MAIN], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
    this.proc.unref()
    this.proc.stdin?.on('error', () => undefined)
  }

  get pid(): number | undefined {
    return this.proc.pid
  }

  /** A run started: its group `pgid`, and `runId`, the tag (ENV.runId) of what it starts. */
  watch(pgid: number, runId: string): void {
    if (!RUN_ID.test(runId)) throw new Error(`run id ${JSON.stringify(runId)}: not one shell word`)
    this.proc.stdin?.write(`+${pgid} ${runId}\n`)
  }

  release(pgid: number): void {
    this.proc.stdin?.write(`-${pgid}\n`)
  }

  /**
   * Lets this process exit while the lifeline still watches: its pipe then
   * closes with the process, and what is still listed is reaped. For an owner
   * with no shutdown of its own to call `close` from (a test process's servers).
   */
  unref(): void {
    // A child's stdio pipe is a net.Socket.
    ;(this.proc.stdin as Socket | null)?.unref()
  }

  /** After a clean shutdown: nothing is left to reap, so the lifeline exits. */
  close(): void {
    this.proc.stdin?.end()
  }
}
