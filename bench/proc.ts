/** What the benchmarks read off processes (from /proc) and their result rows. */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface Row {
  name: string
  value: string
  baselineName: string
  baseline: string
  ratio: string
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  return kb / 1024
}

/** The RSS of an idle `node -e` process: the floor any Node process pays. */
export async function idleNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  await new Promise((r) => setTimeout(r, 1500))
  const rss = rssMb(child.pid ?? 0)
  child.kill('SIGKILL')
  return rss
}

/** Wall time to start `count` bare Node processes at once and see them all exit. */
export async function bareNodeStartMs(count: number): Promise<number> {
  const t0 = performance.now()
  await Promise.all(Array.from({ length: count }, () => new Promise((resolve) => spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).once('exit', resolve))))
  return performance.now() - t0
}
