/**
 * The lifeline: no orphans, even if the supervisor is SIGKILLed.
 *
 * Every child runs in its own process group. A tiny `sh` process, started
 * before any child and detached from the terminal, is told each group as it
 * starts ("+pgid") and ends ("-pgid") over a pipe from the supervisor. It
 * ignores signals and waits for the pipe to close, which the kernel does
 * when the supervisor dies for any reason; then it sends SIGTERM to every
 * group still listed and SIGKILL two seconds later. A shell, not a second
 * Node process: it costs about a megabyte and cannot itself crash on a bug
 * of ours. A clean shutdown empties the list first, so the lifeline just exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'

const SCRIPT = `
trap '' INT TERM HUP
groups=""
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups \${line#+}" ;;
    -*) g="\${line#-}"; kept=""; for x in $groups; do [ "$x" = "$g" ] || kept="$kept $x"; done; groups="$kept" ;;
  esac
done
[ -z "$groups" ] && exit 0
for g in $groups; do kill -TERM -"$g" 2>/dev/null; done
sleep 2
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
`

export class Lifeline {
  private readonly proc: ChildProcess

  constructor() {
    this.proc = spawn('/bin/sh', ['-c', SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
    this.proc.unref()
    this.proc.stdin?.on('error', () => undefined)
  }

  get pid(): number | undefined {
    return this.proc.pid
  }

  watch(pgid: number): void {
    this.proc.stdin?.write(`+${pgid}\n`)
  }

  release(pgid: number): void {
    this.proc.stdin?.write(`-${pgid}\n`)
  }

  /** After a clean shutdown: nothing is left to reap, so the lifeline exits. */
  close(): void {
    this.proc.stdin?.end()
  }
}
