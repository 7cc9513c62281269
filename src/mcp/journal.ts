/**
 * The durable local inbox of `trinity mcp`: every inbox frame (task,
 * message, cancel, and any later kind) is written here, fsynced, BEFORE its
 * PUBACK goes out (bus-session.ts delays the ack until `record` returns).
 * So a frame the broker counts as delivered is on this disk, and a SIGKILL
 * of `trinity mcp` between delivery and the agent's read loses nothing.
 *
 * A frame leaves the inbox only when the agent has read it (trinity_inbox),
 * or, for a task, when it is reported finished. Its row stays behind as a
 * tombstone (`closed`), pruned to the newest KEEP_CLOSED: the broker
 * redelivers a frame whose PUBACK was lost in a crash (QoS 1 is at least
 * once [MQTT-4.3.2]), and the tombstone's key (task id + lease token, message
 * id) keeps that redelivery from showing up twice.
 *
 * One SQLite file in WAL mode with `synchronous = FULL`: a commit is fsynced
 * before better-sqlite3 returns, and inbox traffic (a few frames a second at
 * most for one agent) is far below what that costs.
 */
import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { InboxFrame } from '../contract/payloads/inbox.js'
import { TrinityError } from '../errors.js'

type TaskFrame = Extract<InboxFrame, { kind: 'task' }>

/** Tombstones kept for deduplication. */
const KEEP_CLOSED = 10_000

/** A task the hub assigned to this instance, as the journal knows it. */
export interface JournalTask {
  readonly seq: number
  readonly frame: TaskFrame
  readonly receivedAt: number
  readonly claimed: boolean
  /** A cancel frame for this lease arrived. */
  readonly cancelled: boolean
  /** Finished (reported completed or failed) or superseded by a newer lease for the same task. */
  readonly closed: boolean
}

/** An unread inbox entry, oldest first. */
export interface JournalEntry {
  readonly seq: number
  readonly receivedAt: number
  readonly frame: Exclude<InboxFrame, { kind: 'ping' }>
}

/** The new entry's place in the inbox, or `duplicate` for a frame already recorded. */
export type Recorded = { seq: number } | 'duplicate'

interface Row {
  seq: number
  frame: string
  received_at: number
  claimed_at: number | null
  cancelled: number
  closed: string | null
}

export class Journal {
  private readonly db: Database.Database

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true })
    const file = join(stateDir, 'inbox.db')
    this.db = new Database(file, { timeout: 0 })
    // One process per state dir: the exclusive lock is taken by the first
    // write below and held until close; the OS drops it when the process dies,
    // SIGKILL included. A second `trinity mcp` on this dir fails here instead
    // of sharing the journal (and fighting over the client id).
    try {
      this.db.pragma('locking_mode = EXCLUSIVE')
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = FULL')
      this.db.exec('BEGIN IMMEDIATE; COMMIT')
    } catch (err) {
      this.db.close()
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err
      throw new TrinityError('TRINITY_ERR_STATE_LOCKED', `${file} is in use by another trinity mcp (one process per --state-dir)`, { cause: err })
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        task_id TEXT,
        lease_token TEXT,
        frame TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        read_at INTEGER,
        claimed_at INTEGER,
        cancelled INTEGER NOT NULL DEFAULT 0,
        closed TEXT
      );
      CREATE INDEX IF NOT EXISTS inbox_task ON inbox (task_id, seq);
      CREATE INDEX IF NOT EXISTS inbox_unread ON inbox (read_at, seq);
    `)
  }

  /**
   * Writes a frame (durable when this returns). A frame seen before is a
   * duplicate and changes nothing. A task frame with a new lease for a task
   * already here supersedes the old lease (the hub took it back and gave it
   * again); a cancel marks the lease it names.
   */
  record(frame: Exclude<InboxFrame, { kind: 'ping' }>, now: number = Date.now()): Recorded {
    const key = keyOf(frame)
    const taskId = frame.kind === 'task' ? frame.task.id : frame.kind === 'cancel' ? frame.taskId : null
    const lease = frame.kind === 'task' || frame.kind === 'cancel' ? frame.leaseToken : null
    return this.db.transaction((): Recorded => {
      const inserted = this.db
        .prepare('INSERT OR IGNORE INTO inbox (key, kind, task_id, lease_token, frame, received_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(key, frame.kind, taskId, lease, JSON.stringify(frame), now)
      if (inserted.changes === 0) return 'duplicate'
      const seq = Number(inserted.lastInsertRowid)
      if (frame.kind === 'task') {
        this.db.prepare(`UPDATE inbox SET closed = 'superseded' WHERE kind = 'task' AND task_id = ? AND lease_token <> ? AND closed IS NULL`).run(taskId, lease)
      } else if (frame.kind === 'cancel') {
        this.db.prepare(`UPDATE inbox SET cancelled = 1 WHERE kind = 'task' AND task_id = ? AND lease_token = ?`).run(taskId, lease)
      }
      return { seq }
    })()
  }

  /** What the agent has not read yet, oldest first; no change. */
  unread(): JournalEntry[] {
    const rows = this.db.prepare(`SELECT seq, frame, received_at FROM inbox WHERE read_at IS NULL AND closed IS NULL ORDER BY seq`).all() as Row[]
    return rows.map((r) => ({ seq: r.seq, receivedAt: r.received_at, frame: JSON.parse(r.frame) as JournalEntry['frame'] }))
  }

  /**
   * The agent read these: messages and cancels leave the inbox (their
   * tombstones stay for deduplication); tasks stay until reported finished.
   */
  markRead(seqs: readonly number[], now: number = Date.now()): void {
    const read = this.db.prepare('UPDATE inbox SET read_at = ? WHERE seq = ?')
    const close = this.db.prepare(`UPDATE inbox SET closed = 'read' WHERE seq = ? AND kind <> 'task'`)
    this.db.transaction(() => {
      for (const seq of seqs) {
        read.run(now, seq)
        close.run(seq)
      }
      this.prune()
    })()
  }

  /** The newest lease this instance holds or held for the task; undefined for a task never assigned here. */
  task(taskId: string): JournalTask | undefined {
    const row = this.db.prepare(`SELECT seq, frame, received_at, claimed_at, cancelled, closed FROM inbox WHERE kind = 'task' AND task_id = ? ORDER BY seq DESC LIMIT 1`).get(taskId) as Row | undefined
    if (row === undefined) return undefined
    return {
      seq: row.seq, frame: JSON.parse(row.frame) as TaskFrame, receivedAt: row.received_at,
      claimed: row.claimed_at !== null, cancelled: row.cancelled === 1, closed: row.closed !== null,
    }
  }

  claim(seq: number, now: number = Date.now()): void {
    this.db.prepare('UPDATE inbox SET claimed_at = COALESCE(claimed_at, ?), read_at = COALESCE(read_at, ?) WHERE seq = ?').run(now, now, seq)
  }

  /** Reported completed or failed, or found stale at the hub: the task leaves the inbox. */
  close(seq: number, why: 'finished' | 'stale'): void {
    this.db.prepare('UPDATE inbox SET closed = ? WHERE seq = ? AND closed IS NULL').run(why, seq)
  }

  closeDb(): void {
    this.db.close()
  }

  private prune(): void {
    this.db.prepare(`DELETE FROM inbox WHERE closed IS NOT NULL AND seq NOT IN (SELECT seq FROM inbox WHERE closed IS NOT NULL ORDER BY seq DESC LIMIT ?)`).run(KEEP_CLOSED)
  }
}

/** What makes two deliveries the same frame: QoS 1 redelivers the very same one. */
function keyOf(frame: Exclude<InboxFrame, { kind: 'ping' }>): string {
  switch (frame.kind) {
    case 'task': return `task:${frame.task.id}:${frame.leaseToken}`
    case 'cancel': return `cancel:${frame.taskId}:${frame.leaseToken}`
    case 'message': return `message:${frame.message.id}`
    default: {
      // A kind added to the contract later: the same bytes are the same frame.
      const other: { kind: string } = frame
      return `${other.kind}:${createHash('sha256').update(JSON.stringify(other)).digest('hex')}`
    }
  }
}
