/**
 * Logging: pino everywhere. JSON lines by default (for machines and the
 * supervisor's unified stream), pino-pretty when stdout is a TTY, and
 * optionally a JSON log file rotated by size (pino-roll).
 */
import { pino, type Logger } from 'pino'

export type { Logger }

export interface LogOptions {
  level?: string
  /** true, false, or 'auto' (pretty when stdout is a TTY). */
  pretty?: boolean | 'auto'
  name?: string
}

export interface LogFileOptions {
  /** Path of the live file; rotated files get a number before the extension. */
  file: string
  /** Rotate at this size: 10m, 500k, 1g. */
  maxSize: string
  /** Rotated files kept beside the live one. */
  maxFiles: number
}

function isPretty(options: LogOptions): boolean {
  return options.pretty === 'auto' || options.pretty === undefined ? process.stdout.isTTY === true : options.pretty
}

function base(options: LogOptions): { level: string; name?: string } {
  return { level: options.level ?? 'info', ...(options.name === undefined ? {} : { name: options.name }) }
}

export function createLogger(options: LogOptions = {}): Logger {
  if (isPretty(options)) {
    return pino({ ...base(options), transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } })
  }
  return pino(base(options))
}

/** The console stream as createLogger makes it, plus a rotated JSON file. */
export async function createLoggerWithFile(options: LogOptions, file: LogFileOptions): Promise<Logger> {
  // Loaded here, not at the top: every child process imports this module.
  const [{ default: roll }, { default: pretty }] = await Promise.all([import('pino-roll'), import('pino-pretty')])
  const fileStream = await roll({ file: file.file, size: file.maxSize, limit: { count: file.maxFiles }, mkdir: true })
  const console = isPretty(options)
    ? pretty({ colorize: true, translateTime: 'HH:MM:ss.l', sync: true })
    : pino.destination({ dest: 1, sync: false })
  return pino(base(options), pino.multistream([{ stream: console, level: 'trace' }, { stream: fileStream, level: 'trace' }]))
}

/** A logger that drops everything: for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
