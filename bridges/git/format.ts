/**
 * The coordination files' format: message files (`messages/{a}_TO_{b}.md`,
 * and their archives) and status files (`COMPUTER_{n}.md`). Spec with
 * examples: coordination/README.md.
 *
 * Injection-proofing: a message body is never scanned for structure. Its
 * header (an HTML comment holding JSON) says how many lines the body has, and
 * the parser skips exactly that many; the body also sits in a code fence
 * longer than any run of backticks in it, so it renders as inert text. Bodies
 * that a text file cannot carry exactly (control characters other than tab and
 * newline, carriage returns, lone surrogates) are stored as base64 of their
 * UTF-16LE code units instead, which round-trips any JavaScript string.
 */
import { stringify as yamlStringify, parse as yamlParse } from 'yaml'
import { COMPUTER_STATES, type ComputerMessage, type ComputerState, type ComputerStatus } from '../../src/contract/payloads/bridge.js'
import { isTopicId } from '../../src/contract/topics.js'

export const COORDINATION_DIR = 'coordination'
export const MESSAGES_DIR = `${COORDINATION_DIR}/messages`
export const ARCHIVE_DIR = `${MESSAGES_DIR}/archive`

export function statusFileName(computer: string): string {
  return `${COORDINATION_DIR}/COMPUTER_${computer}.md`
}

export function messageFileName(from: string, to: string): string {
  return `${MESSAGES_DIR}/${from}_TO_${to}.md`
}

/** Archives are named by the seq range they hold, zero-padded so they sort. */
export function archiveFileName(from: string, to: string, firstSeq: number, lastSeq: number): string {
  return `${ARCHIVE_DIR}/${from}_TO_${to}.${pad(firstSeq)}-${pad(lastSeq)}.md`
}

export function parseArchiveName(name: string): { from: string; to: string; firstSeq: number; lastSeq: number } | undefined {
  const m = /^(.+)_TO_(.+)\.([0-9]{9,})-([0-9]{9,})\.md$/.exec(name)
  if (m === null || !isTopicId(m[1] ?? '') || !isTopicId(m[2] ?? '')) return undefined
  return { from: m[1] ?? '', to: m[2] ?? '', firstSeq: Number(m[3]), lastSeq: Number(m[4]) }
}

export function parseMessageFileName(name: string): { from: string; to: string } | undefined {
  const m = /^(.+)_TO_(.+)\.md$/.exec(name)
  if (m === null || !isTopicId(m[1] ?? '') || !isTopicId(m[2] ?? '')) return undefined
  return { from: m[1] ?? '', to: m[2] ?? '' }
}

function pad(n: number): string {
  return String(n).padStart(9, '0')
}

// ---------------------------------------------------------------------------
// Messages

/** One message as it is stored in a file. */
/**
 * A message as its file holds it: the bus's ComputerMessage, field for field
 * (what the bridge publishes on `computer/{from}/message` is the parsed file
 * message itself, with no copy in between).
 */
export type FileMessage = ComputerMessage

/** A message's header line: its fields but the body, and how the body that follows is stored. */
type Header = Omit<FileMessage, 'message'> & {
  encoding: 'text' | 'base64'
  lines: number
}

const HEADER_OPEN = '<!-- trinity-message '
const HEADER_CLOSE = ' -->'
const FOOTER = '<!-- /trinity-message -->'

/** Text a markdown file carries exactly: well-formed, and no control characters but tab and newline. */
function isSafeText(body: string): boolean {
  return !/[\u0000-\u0008\u000b-\u001f\u007f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(body)
}

function encodeBody(body: string): { encoding: 'text' | 'base64'; lines: string[] } {
  if (isSafeText(body)) return { encoding: 'text', lines: body.split('\n') }
  const b64 = Buffer.from(body, 'utf16le').toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76))
  return { encoding: 'base64', lines: lines.length === 0 ? [''] : lines }
}

function decodeBody(encoding: 'text' | 'base64', lines: string[]): string {
  if (encoding === 'text') return lines.join('\n')
  return Buffer.from(lines.join(''), 'base64').toString('utf16le')
}

/** A code fence longer than any run of backticks in the body, so the body renders as one inert block. */
function fenceFor(lines: string[]): string {
  let longest = 0
  for (const line of lines) {
    const runs = line.match(/`+/g)
    if (runs !== null) for (const run of runs) longest = Math.max(longest, run.length)
  }
  return '`'.repeat(Math.max(3, longest + 1))
}

/** JSON that cannot close the HTML comment it sits in. */
function safeJson(value: unknown): string {
  return JSON.stringify(value).replaceAll('<', '\\u003c').replaceAll('>', '\\u003e')
}

export function serializeMessage(m: FileMessage): string {
  const { encoding, lines } = encodeBody(m.message)
  const header: Header = {
    id: m.id, seq: m.seq, from: m.from, to: m.to,
    ...(m.fromInstance === undefined ? {} : { fromInstance: m.fromInstance }),
    ...(m.instance === undefined ? {} : { instance: m.instance }),
    ...(m.topic === undefined ? {} : { topic: m.topic }),
    ts: m.ts, encoding, lines: lines.length,
  }
  const fence = fenceFor(lines)
  const who = `${m.fromInstance === undefined ? m.from : `${m.from}/${m.fromInstance}`} → ${m.instance === undefined ? m.to : `${m.to}/${m.instance}`}`
  return [
    `### #${m.seq} · ${who} · ${new Date(m.ts).toISOString()}`,
    `${HEADER_OPEN}${safeJson(header)}${HEADER_CLOSE}`,
    `${fence}${encoding === 'base64' ? 'base64' : 'text'}`,
    ...lines,
    fence,
    FOOTER,
    '',
  ].join('\n')
}

export function messageFileTitle(from: string, to: string): string {
  return `# Messages from computer ${from} to computer ${to}\n\nAppended only by computer ${from}'s git bridge. Format: coordination/README.md.\n\n`
}

export function serializeMessageFile(from: string, to: string, messages: readonly FileMessage[]): string {
  let out = messageFileTitle(from, to)
  for (const m of messages) out += `${serializeMessage(m)}\n`
  return out
}

export interface ParseProblem {
  line: number
  reason: string
}

export interface ParsedMessages {
  messages: FileMessage[]
  problems: ParseProblem[]
}

/**
 * Every well-formed message block in a file, in file order. A damaged block
 * is reported with its line and skipped; parsing goes on at the next header.
 */
export function parseMessages(text: string): ParsedMessages {
  // A file checked out or committed with CRLF endings reads the same: no stored line contains \r
  // (text bodies with one are written as base64).
  const lines = text.replaceAll('\r\n', '\n').split('\n')
  const messages: FileMessage[] = []
  const problems: ParseProblem[] = []
  let i = 0
  while (i < lines.length) {
    const line = lines[i] ?? ''
    if (!line.startsWith(HEADER_OPEN)) { i++; continue }
    const result = parseBlock(lines, i)
    if ('reason' in result) {
      problems.push({ line: i + 1, reason: result.reason })
      i++
    } else {
      messages.push(result.message)
      i = result.next
    }
  }
  return { messages, problems }
}

function parseBlock(lines: string[], start: number): { message: FileMessage; next: number } | { reason: string } {
  const line = lines[start] ?? ''
  if (!line.endsWith(HEADER_CLOSE)) return { reason: 'message header does not end with -->' }
  let header: Header
  try {
    header = JSON.parse(line.slice(HEADER_OPEN.length, line.length - HEADER_CLOSE.length)) as Header
  } catch (err) {
    return { reason: `message header is not JSON: ${(err as Error).message}` }
  }
  const problem = checkHeader(header)
  if (problem !== undefined) return { reason: problem }
  const fenceLine = lines[start + 1]
  const fence = /^(`{3,})(text|base64)$/.exec(fenceLine ?? '')
  if (fence === null || fence[2] !== header.encoding) return { reason: 'expected an opening code fence after the message header' }
  const bodyStart = start + 2
  const bodyEnd = bodyStart + header.lines
  if (lines[bodyEnd] !== fence[1]) return { reason: `expected the closing fence after ${header.lines} body lines` }
  if (lines[bodyEnd + 1] !== FOOTER) return { reason: `expected ${FOOTER} after the body` }
  const message: FileMessage = {
    id: header.id, seq: header.seq, from: header.from, to: header.to,
    ...(header.fromInstance === undefined ? {} : { fromInstance: header.fromInstance }),
    ...(header.instance === undefined ? {} : { instance: header.instance }),
    ...(header.topic === undefined ? {} : { topic: header.topic }),
    ts: header.ts,
    message: decodeBody(header.encoding, lines.slice(bodyStart, bodyEnd)),
  }
  return { message, next: bodyEnd + 2 }
}

function checkHeader(h: Header): string | undefined {
  if (h === null || typeof h !== 'object') return 'message header is not an object'
  for (const key of ['id', 'from', 'to'] as const) if (typeof h[key] !== 'string' || !isTopicId(h[key])) return `message header: ${key} is not an id`
  for (const key of ['fromInstance', 'instance'] as const) if (h[key] !== undefined && (typeof h[key] !== 'string' || !isTopicId(h[key]))) return `message header: ${key} is not an id`
  if (h.topic !== undefined && typeof h.topic !== 'string') return 'message header: topic is not a string'
  if (!Number.isSafeInteger(h.seq) || h.seq < 1) return 'message header: seq is not a positive integer'
  if (!Number.isSafeInteger(h.ts)) return 'message header: ts is not an integer'
  if (!Number.isSafeInteger(h.lines) || h.lines < 1) return 'message header: lines is not a positive integer'
  if (h.encoding !== 'text' && h.encoding !== 'base64') return 'message header: encoding is not text or base64'
  return undefined
}

// ---------------------------------------------------------------------------
// Status files

const STATE_SET: ReadonlySet<string> = new Set(COMPUTER_STATES)

/** The front matter as YAML (for machines), then a table (for people). */
export function serializeStatus(status: ComputerStatus): string {
  const front = yamlStringify(status, { lineWidth: 0 }).trimEnd()
  const rows = status.instances.map((i) => `| ${i.id} | ${i.health} |`)
  const reads = Object.entries(status.read).map(([peer, r]) => `| ${peer} | #${r.seq} | ${r.id} |`)
  return [
    '---', front, '---',
    `# Computer ${status.computer}`,
    '',
    `Written only by computer ${status.computer}'s git bridge; the front matter above is what machines read. Format: coordination/README.md.`,
    '',
    `**State: ${status.state}** · updated ${status.updated ?? 'never'} · queue depth ${status.queueDepth} · last sync ${status.lastSync ?? 'never'}`,
    '',
    '| instance | health |',
    '|---|---|',
    ...(rows.length === 0 ? ['| (none seen) | |'] : rows),
    '',
    '| from computer | last read | message id |',
    '|---|---|---|',
    ...(reads.length === 0 ? ['| (none yet) | | |'] : reads),
    '',
  ].join('\n')
}

export type ParsedStatus = { ok: true; status: ComputerStatus } | { ok: false; reason: string }

/** A YAML scalar as the text it was written as (`computer: 42` is the id "42"); a mapping or a list as JSON, not "[object Object]". */
function scalarText(v: unknown, absent: string): string {
  if (v === null || v === undefined) return absent
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v)
}

export function parseStatus(text: string): ParsedStatus {
  const lines = text.replaceAll('\r\n', '\n').split('\n')
  if (lines[0]?.trimEnd() !== '---') return { ok: false, reason: 'no front matter: the file must start with ---' }
  const end = lines.findIndex((l, i) => i > 0 && l.trimEnd() === '---')
  if (end < 0) return { ok: false, reason: 'front matter is not closed with ---' }
  let raw: unknown
  try {
    raw = yamlParse(lines.slice(1, end).join('\n'))
  } catch (err) {
    return { ok: false, reason: `front matter is not YAML: ${(err as Error).message.split('\n')[0] ?? ''}` }
  }
  if (raw === null || typeof raw !== 'object') return { ok: false, reason: 'front matter is not a mapping' }
  const r = raw as Record<string, unknown>
  const computer = scalarText(r['computer'], '')
  if (!isTopicId(computer)) return { ok: false, reason: 'front matter: computer is not an id' }
  const state = scalarText(r['state'], '')
  if (!STATE_SET.has(state)) return { ok: false, reason: `front matter: state ${JSON.stringify(state)} is not one of ${COMPUTER_STATES.join(', ')}` }
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : v instanceof Date ? v.toISOString() : null)
  const instances = Array.isArray(r['instances'])
    ? (r['instances'] as unknown[]).flatMap((i) => {
      const o = i as Record<string, unknown> | null
      return o !== null && typeof o === 'object' && typeof o['id'] === 'string' && isTopicId(o['id']) ? [{ id: o['id'], health: scalarText(o['health'], 'unknown') }] : []
    })
    : []
  const read: ComputerStatus['read'] = {}
  const rawRead = r['read']
  if (rawRead !== null && typeof rawRead === 'object') {
    for (const [peer, v] of Object.entries(rawRead as Record<string, unknown>)) {
      const o = v as Record<string, unknown> | null
      if (o !== null && typeof o === 'object' && typeof o['id'] === 'string' && Number.isSafeInteger(o['seq'])) read[peer] = { id: o['id'], seq: o['seq'] as number }
    }
  }
  const depth = r['queueDepth']
  return {
    ok: true,
    status: {
      computer, state: state as ComputerState,
      updated: str(r['updated']), lastSync: str(r['lastSync']),
      queueDepth: Number.isSafeInteger(depth) && (depth as number) >= 0 ? (depth as number) : 0,
      instances, read,
    },
  }
}
