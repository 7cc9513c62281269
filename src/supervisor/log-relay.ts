/**
 * One log stream for every process: each line a child prints becomes a pino
 * record of the supervisor's, with `service` (the child's name) and, for
 * instances, `instance`. A child that already logs pino JSON keeps its
 * level, message and fields (its own `service` becomes `component`; `pid`,
 * `hostname`, `time` and `name` are the relay's to set); any
 * other line is logged as it is, at info from stdout and warn from stderr.
 */
import type { Logger } from '../log.js'

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal',
}

export function relayLine(log: Logger, stream: 'stdout' | 'stderr', line: string, boundInstance?: string): void {
  if (line.trim() === '') return
  if (line.startsWith('{')) {
    let record: Record<string, unknown> | undefined
    try { record = JSON.parse(line) as Record<string, unknown> } catch { /* not JSON after all */ }
    if (record !== undefined && typeof record['level'] === 'number') {
      const { level, msg, time: _time, pid: _pid, hostname: _hostname, service, name: _name, ...fields } = record
      if (boundInstance !== undefined && fields['instance'] === boundInstance) delete fields['instance']
      const method = LEVELS[level] ?? 'info'
      if (service !== undefined) fields['component'] = service
      log[method](fields, typeof msg === 'string' ? msg : '')
      return
    }
  }
  if (stream === 'stderr') log.warn({ stream }, line)
  else log.info({ stream }, line)
}
