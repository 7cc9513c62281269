/**
 * Logging: pino everywhere. JSON lines by default (for machines and the
 * supervisor's unified stream), pino-pretty when stdout is a TTY.
 */
import { pino, type Logger } from 'pino'

export type { Logger }

export interface LogOptions {
  level?: string
  /** true, false, or 'auto' (pretty when stdout is a TTY). */
  pretty?: boolean | 'auto'
  name?: string
}

export function createLogger(options: LogOptions = {}): Logger {
  const pretty = options.pretty === 'auto' || options.pretty === undefined ? process.stdout.isTTY === true : options.pretty
  const base = { level: options.level ?? 'info', ...(options.name === undefined ? {} : { name: options.name }) }
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } })
  }
  return pino(base)
}

/** A logger that drops everything: for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
