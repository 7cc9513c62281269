/**
 * What colour a state gets, and the symbol shown beside it: colour is never
 * the only signal (the state's name is always written too), and the symbol
 * tells states apart on a monochrome screen or to a colour-blind reader.
 */

export type Tone = 'ok' | 'warn' | 'bad' | 'idle' | 'busy'

const TONES: Readonly<Record<string, Tone>> = {
  // instances (health and status)
  online: 'ok', degraded: 'warn', timeout: 'warn', offline: 'bad', error: 'bad', draining: 'warn',
  // tasks
  // needs_input: a person must act, so it stands out as a warning does
  queued: 'idle', assigned: 'busy', running: 'busy', needs_input: 'warn', completed: 'ok', failed: 'bad', dead: 'bad', cancelled: 'idle',
  // computers
  ACTIVE: 'ok', WORKING: 'busy', IDLE: 'ok', SYNCING: 'busy', OFFLINE: 'bad', EMERGENCY: 'bad',
  // bridge and ERROR
  ERROR: 'bad',
  // the page's own bus connection
  connected: 'ok', disconnected: 'bad',
}

/** Supervised processes: `running` is the good state there, not work in progress. */
const PROCESS_TONES: Readonly<Record<string, Tone>> = { running: 'ok', starting: 'busy', backoff: 'warn', error: 'bad', stopped: 'idle' }

const SYMBOLS: Readonly<Record<Tone, string>> = { ok: '●', warn: '▲', bad: '✖', idle: '○', busy: '◆' }

export function toneOf(state: string | null | undefined, kind: 'state' | 'process' = 'state'): Tone {
  if (state === null || state === undefined) return 'idle'
  const table = kind === 'process' ? PROCESS_TONES : TONES
  return table[state] ?? table[state.toLowerCase()] ?? 'idle'
}

export function symbolOf(tone: Tone): string {
  return SYMBOLS[tone]
}

/** `● online`, `✖ offline`, `○ —`. */
export function labelOf(state: string | null | undefined, kind: 'state' | 'process' = 'state'): string {
  return `${symbolOf(toneOf(state, kind))} ${state ?? '—'}`
}
