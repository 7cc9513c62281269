/**
 * `trinity …` as a child process, run to its end: no hub address, config,
 * token or bus login in its environment but what the test passes, cwd a temp
 * dir (no config file to find), killed if it still runs after a minute.
 */
import { spawn } from 'node:child_process'
import { ENV } from '../../src/config/env.js'
import { CLI } from './hub.js'

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** What the caller's environment could add to a CLI run: a test passes what it means. */
export const CLEARED = [ENV.url, ENV.config, ENV.token, ENV.mqttUsername, ENV.mqttPassword] as const

export function runCli(args: readonly string[], options: { cwd: string; env?: Record<string, string> }): Promise<CliRun> {
  const base = { ...process.env }
  for (const name of CLEARED) delete base[name]
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...base, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) => child.once('close', (code) => { clearTimeout(guard); resolve({ code, stdout, stderr }) }))
}
