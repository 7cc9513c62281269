/**
 * What the bridge remembers across restarts about incoming messages: for
 * each sending computer, the ids already published on the bus (so each is
 * published once) and the last one read (named in this computer's status
 * file: the sender's delivery receipt). Written atomically after each batch.
 */
import { existsSync, readFileSync } from 'node:fs'
import { writeFileAtomic } from './atomic.js'

/** Ids kept per sender; anything at or below `floor` counts as seen once its id is dropped. */
const KEEP_IDS = 20_000

interface PeerSeen {
  /** Every message with seq ≤ floor has been published. */
  floor: number
  /** [id, seq], oldest first. */
  ids: [string, number][]
  last: { id: string; seq: number } | null
}

interface StateFile {
  version: 1
  seen: Record<string, PeerSeen>
}

export class SeenState {
  private readonly seen = new Map<string, { floor: number; ids: Set<string>; order: string[]; seqs: Map<string, number>; last: { id: string; seq: number } | null }>()
  private dirty = false

  constructor(private readonly file: string) {
    if (!existsSync(file)) return
    const data = JSON.parse(readFileSync(file, 'utf8')) as StateFile
    for (const [peer, s] of Object.entries(data.seen)) {
      this.seen.set(peer, { floor: s.floor, ids: new Set(s.ids.map(([id]) => id)), order: s.ids.map(([id]) => id), seqs: new Map(s.ids), last: s.last })
    }
  }

  private peer(from: string): { floor: number; ids: Set<string>; order: string[]; seqs: Map<string, number>; last: { id: string; seq: number } | null } {
    let p = this.seen.get(from)
    if (p === undefined) {
      p = { floor: 0, ids: new Set(), order: [], seqs: new Map(), last: null }
      this.seen.set(from, p)
    }
    return p
  }

  has(from: string, id: string, seq: number): boolean {
    const p = this.seen.get(from)
    if (p === undefined) return false
    return p.ids.has(id) || seq <= p.floor
  }

  /** The highest seq seen from `from` (0 if none): a gap above the live file's first message means read the archives. */
  lastSeq(from: string): number {
    return this.seen.get(from)?.last?.seq ?? 0
  }

  mark(from: string, id: string, seq: number): void {
    const p = this.peer(from)
    if (p.ids.has(id)) return
    p.ids.add(id)
    p.order.push(id)
    p.seqs.set(id, seq)
    if (p.last === null || seq > p.last.seq) p.last = { id, seq }
    if (p.order.length > KEEP_IDS) {
      for (const dropped of p.order.splice(0, p.order.length - KEEP_IDS)) {
        p.ids.delete(dropped)
        p.floor = Math.max(p.floor, p.seqs.get(dropped) ?? 0)
        p.seqs.delete(dropped)
      }
    }
    this.dirty = true
  }

  /** Count every message from `from` up to `seq` as published. */
  raiseFloor(from: string, seq: number): void {
    const p = this.peer(from)
    if (seq > p.floor) { p.floor = seq; this.dirty = true }
  }

  /** For this computer's status file: the last message read from each sender. */
  readMarks(): Record<string, { id: string; seq: number }> {
    const out: Record<string, { id: string; seq: number }> = {}
    for (const [peer, p] of [...this.seen.entries()].sort(([a], [b]) => a.localeCompare(b))) if (p.last !== null) out[peer] = { ...p.last }
    return out
  }

  save(): void {
    if (!this.dirty) return
    const data: StateFile = { version: 1, seen: {} }
    for (const [peer, p] of this.seen) data.seen[peer] = { floor: p.floor, ids: p.order.map((id) => [id, p.seqs.get(id) ?? 0]), last: p.last }
    writeFileAtomic(this.file, JSON.stringify(data))
    this.dirty = false
  }
}
