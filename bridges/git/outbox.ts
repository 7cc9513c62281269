/**
 * The outgoing queue: every message for another computer, on disk from the
 * moment the bridge accepts it until the recipient's status file says it was
 * read (the delivery receipt).
 *
 * An append-only log of JSON lines (`add`, `pushed`, `delivered`), fsynced
 * before the MQTT PUBACK is sent, and compacted (rewritten atomically) after
 * each round. A torn last line from a kill -9 is ignored: the message on it
 * was never acknowledged, so its publisher (QoS 1, persistent session) sends
 * it again.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs'
import type { ComputerMessage } from '../../src/contract/payloads/bridge.js'
import { writeFileAtomic } from './atomic.js'

/** A message on its way out: a ComputerMessage before it has a sender's file and a place in it. */
export type OutgoingMessage = Omit<ComputerMessage, 'from' | 'seq'>

export interface OutgoingEntry extends OutgoingMessage {
  /** Set once the message is in the pushed file: its position there. */
  seq: number | null
  state: 'queued' | 'pushed'
}

type LogLine =
  | { op: 'add'; entry: OutgoingEntry }
  | { op: 'pushed'; ids: [string, number][] }
  | { op: 'delivered'; ids: string[] }

export interface RecentDelivery {
  id: string
  to: string
  seq: number | null
}

export class Outbox {
  private readonly entries = new Map<string, OutgoingEntry>()
  private fd = -1
  private pendingSync: ((error?: Error) => void)[] = []
  /** The last deliveries, newest last, for the bridge status. */
  readonly recentlyDelivered: RecentDelivery[] = []
  private deliveredTotal = 0
  private logLines = 0

  constructor(private readonly file: string) {
    if (existsSync(file)) this.replay(readFileSync(file, 'utf8'))
    this.compact()
    this.fd = openSync(file, 'a')
  }

  private replay(text: string): void {
    for (const line of text.split('\n')) {
      if (line === '') continue
      let parsed: LogLine
      try { parsed = JSON.parse(line) as LogLine } catch { continue } // a torn last line
      switch (parsed.op) {
        case 'add': if (!this.entries.has(parsed.entry.id)) this.entries.set(parsed.entry.id, fromLegacy(parsed.entry)); break
        case 'pushed': this.applyPushed(parsed.ids); break
        case 'delivered': for (const id of parsed.ids) this.entries.delete(id); break
      }
    }
  }

  /** Queue a message (written, not yet fsynced: see `whenDurable`). Returns false for an id already queued. */
  add(message: OutgoingMessage): boolean {
    if (this.entries.has(message.id)) return false
    const entry: OutgoingEntry = { ...message, seq: null, state: 'queued' }
    this.entries.set(entry.id, entry)
    this.append({ op: 'add', entry })
    return true
  }

  /** Run `durable` once everything added so far is fsynced: one fsync for everything added in the same tick. */
  whenDurable(durable: (error?: Error) => void): void {
    this.pendingSync.push(durable)
    if (this.pendingSync.length === 1) setImmediate(() => this.flush())
  }

  private flush(): void {
    const callbacks = this.pendingSync
    this.pendingSync = []
    let error: Error | undefined
    try { fsyncSync(this.fd) } catch (err) { error = err as Error }
    for (const callback of callbacks) callback(error)
  }

  /** Messages not yet in a pushed file, for one recipient, oldest first. */
  queuedFor(to: string): OutgoingEntry[] {
    return [...this.entries.values()].filter((e) => e.to === to && e.state === 'queued')
  }

  /** Pushed, awaiting the receipt, for one recipient. */
  pushedFor(to: string): OutgoingEntry[] {
    return [...this.entries.values()].filter((e) => e.to === to && e.state === 'pushed')
  }

  /** Every computer we hold messages for (queued, or pushed without a receipt yet). */
  recipients(): string[] {
    return [...new Set([...this.entries.values()].map((e) => e.to))]
  }

  /** They are in the remote's file now, at these positions. */
  markPushed(ids: [string, number][]): void {
    const known = ids.filter(([id]) => this.entries.get(id)?.state === 'queued')
    if (known.length === 0) return
    this.applyPushed(known)
    this.append({ op: 'pushed', ids: known })
    fsyncSync(this.fd)
  }

  private applyPushed(ids: [string, number][]): void {
    for (const [id, seq] of ids) {
      const entry = this.entries.get(id)
      if (entry !== undefined) { entry.state = 'pushed'; entry.seq = seq }
    }
  }

  /** The recipient's status file names `readSeq` as the last message it read from us: everything up to it is delivered. */
  markDelivered(to: string, readSeq: number): number {
    const ids = [...this.entries.values()].filter((e) => e.to === to && e.state === 'pushed' && e.seq !== null && e.seq <= readSeq).map((e) => e.id)
    if (ids.length === 0) return 0
    for (const id of ids) {
      const entry = this.entries.get(id)
      this.entries.delete(id)
      this.recentlyDelivered.push({ id, to, seq: entry?.seq ?? null })
    }
    this.deliveredTotal += ids.length
    if (this.recentlyDelivered.length > 100) this.recentlyDelivered.splice(0, this.recentlyDelivered.length - 100)
    this.append({ op: 'delivered', ids })
    fsyncSync(this.fd)
    return ids.length
  }

  get delivered(): number {
    return this.deliveredTotal
  }

  counts(): { queued: number; awaitingReceipt: number } {
    let queued = 0
    let awaitingReceipt = 0
    for (const e of this.entries.values()) {
      if (e.state === 'queued') queued++
      else awaitingReceipt++
    }
    return { queued, awaitingReceipt }
  }

  /** The most recent entries (queued and pushed), oldest first. */
  list(limit = 100): OutgoingEntry[] {
    const all = [...this.entries.values()]
    return all.slice(Math.max(0, all.length - limit))
  }

  /** Compact when the log has grown to more than twice what it holds (and past 1,000 lines): rewriting costs an fsync. */
  maybeCompact(): void {
    if (this.logLines > 1000 && this.logLines > 2 * this.entries.size) this.compact()
  }

  /** Rewrite the log as the current entries only. */
  compact(): void {
    if (this.pendingSync.length > 0) this.flush()
    const text = [...this.entries.values()].map((entry) => `${JSON.stringify({ op: 'add', entry } satisfies LogLine)}\n`).join('')
    writeFileAtomic(this.file, text)
    this.logLines = this.entries.size
    if (this.fd >= 0) {
      closeSync(this.fd)
      this.fd = openSync(this.file, 'a')
    }
  }

  close(): void {
    if (this.pendingSync.length > 0) this.flush()
    closeSync(this.fd)
  }

  private append(line: LogLine): void {
    writeSync(this.fd, `${JSON.stringify(line)}\n`)
    this.logLines++
  }
}

/** An entry logged before the one message shape, when the text was in `body`: read as `message`. */
function fromLegacy(entry: OutgoingEntry & { body?: string }): OutgoingEntry {
  if (entry.message !== undefined || entry.body === undefined) return entry
  const { body, ...rest } = entry
  return { ...rest, message: body }
}
