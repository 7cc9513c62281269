/**
 * The default task store (task-store.ts): tasks, the message log and each
 * instance's last birth in one SQLite file (WAL).
 *
 * Writes are synchronous (better-sqlite3): when save() returns, the row is in
 * the WAL, so a task is on disk before the hub acknowledges it (HTTP 202 or
 * the PUBACK that MQTT.js sends after our message handler returns). With
 * `sync: normal` that survives kill -9 of the hub; `sync: full` also fsyncs
 * every commit, for power loss.
 *
 * A store that cannot be trusted stops the hub (TRINITY_ERR_STORE_CORRUPT):
 * a 0-byte file would otherwise open as a fresh, empty store and silently
 * forget every task, and a file that is not SQLite fails on its first query.
 * A full disk fails a write with TRINITY_ERR_STORE_FULL, which the scheduler
 * turns into a refused submission (507) rather than a lost one.
 *
 * Each row carries its task's summary (src/contract/task-summary.ts) as JSON
 * beside the record, written with it: GET /tasks lists up to 1000 summaries,
 * and building them from records meant parsing every content and result (up
 * to `limits.maxPayload` each) to throw them away (issue #14). A store made
 * before the column existed gets it at open, filled once from the records.
 */
import Database from 'better-sqlite3'
import { mkdirSync, statSync, statfsSync } from 'node:fs'
import { dirname } from 'node:path'
import { ACTIVE_TASK_STATES } from '../contract/constants.js'
import type { TaskRecord, TaskSummary } from '../contract/payloads/task.js'
import { summarizeTask, type ContentFacts } from '../contract/task-summary.js'
import type { Message } from '../contract/payloads/message.js'
import { TrinityError } from '../errors.js'
import type { RememberedBirth, TaskFilter, TaskKey, TaskStore } from './task-store.js'

/** The store's file name in hub.dataDir. */
export const STORE_FILE = 'trinity.db'

export interface StoreOptions {
  file: string
  sync: 'normal' | 'full'
}

export class SqliteStore implements TaskStore {
  private readonly db: Database.Database
  private readonly upsertTask: Database.Statement<[string, string, string, number, number, string, string]>
  private readonly insertMessage: Database.Statement<[string, number, string]>
  private readonly selectTask: Database.Statement<[string], { record: string }>
  private readonly trimMessages: Database.Statement<[number]>
  /** One transaction function for every commit: better-sqlite3 builds four wrappers per `db.transaction` call. */
  private readonly inTransaction: (fn: () => unknown) => unknown

  private readonly file: string

  constructor(options: StoreOptions) {
    const { file } = options
    this.file = file
    if (file !== ':memory:') {
      mkdirSync(dirname(file), { recursive: true })
      // A missing file is a fresh start; an empty one is a store that lost its contents.
      if (statSync(file, { throwIfNoEntry: false })?.size === 0) {
        throw new TrinityError('TRINITY_ERR_STORE_CORRUPT', `${file} is empty (truncated?): every task it held is gone. To start with a fresh store, move it aside (mv ${file} ${file}.empty) and start again`)
      }
    }
    this.db = new Database(file)
    try {
      this.db.pragma('journal_mode = WAL')
      this.db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`)
      this.createSchema()
      this.addSummaries()
    } catch (err) {
      this.db.close()
      const code = (err as { code?: unknown }).code
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new TrinityError('TRINITY_ERR_STORE_CORRUPT', `${file} is not a readable SQLite database (${(err as Error).message}): restore it from a backup, or move it aside (mv ${file} ${file}.corrupt) to start with an empty store`, { cause: err })
      }
      throw err
    }
    this.upsertTask = this.db.prepare(
      `INSERT INTO tasks (id, state, type, created_at, updated_at, record, summary) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, record = excluded.record, summary = excluded.summary`,
    )
    this.insertMessage = this.db.prepare('INSERT OR IGNORE INTO messages (id, ts, record) VALUES (?, ?, ?)')
    this.selectTask = this.db.prepare('SELECT record FROM tasks WHERE id = ?')
    this.trimMessages = this.db.prepare('DELETE FROM messages WHERE seq <= ?')
    this.inTransaction = this.db.transaction((fn: () => unknown) => fn())
  }

  private createSchema(): void {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        -- Before the record: reading a column after a big one walks that one's overflow pages.
        summary TEXT,
        record TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, updated_at);
      CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        ts INTEGER NOT NULL,
        record TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS births (
        id TEXT PRIMARY KEY,
        session INTEGER NOT NULL,
        profile TEXT NOT NULL
      );
    `)
  }

  /**
   * An instance's last birth: its session and profile, so that a restarted hub
   * knows which session the instance runs (registry.ts `restore`). Bounded as the
   * registry is: a forgotten instance's row goes with it (`forgetBirth`).
   */
  saveBirth(birth: RememberedBirth): void {
    this.write(() => this.db.prepare('INSERT OR REPLACE INTO births (id, session, profile) VALUES (?, ?, ?)').run(birth.id, birth.session, JSON.stringify(birth.profile)))
  }

  forgetBirth(id: string): void {
    this.db.prepare('DELETE FROM births WHERE id = ?').run(id)
  }

  births(): RememberedBirth[] {
    const rows = this.db.prepare('SELECT id, session, profile FROM births ORDER BY rowid').all() as { id: string; session: number; profile: string }[]
    return rows.map((r) => ({ id: r.id, session: r.session, profile: JSON.parse(r.profile) as RememberedBirth['profile'] }))
  }

  /**
   * A store made before tasks had a `summary` column: added, and filled from each record, in one
   * transaction (a crash on the way leaves the old store as it was). At the end of the row, where
   * ADD COLUMN puts it; new stores have it before the record.
   */
  private addSummaries(): void {
    const columns = this.db.prepare('PRAGMA table_info(tasks)').all() as { name: string }[]
    if (columns.some((c) => c.name === 'summary')) return
    const page = this.db.prepare('SELECT rowid AS row, id, record FROM tasks WHERE rowid > ? ORDER BY rowid LIMIT 500')
    this.write(() => this.db.transaction(() => {
      this.db.exec('ALTER TABLE tasks ADD COLUMN summary TEXT')
      const fill = this.db.prepare('UPDATE tasks SET summary = ? WHERE rowid = ?')
      // Pages by rowid: better-sqlite3 allows no write while a query is being iterated.
      for (let after = 0; ;) {
        const rows = page.all(after) as { row: number; id: string; record: string }[]
        if (rows.length === 0) break
        for (const { row, id, record } of rows) {
          let summary: string
          try {
            summary = JSON.stringify(summarizeTask(JSON.parse(record) as TaskRecord))
          } catch (err) {
            throw new TrinityError('TRINITY_ERR_STORE_CORRUPT', `${this.file}: the record of task ${id} is not a task (${(err as Error).message}): restore the file from a backup`, { cause: err })
          }
          fill.run(summary, row)
          after = row
        }
      }
    })())
  }

  /** Writes the task and its summary; returns the record's JSON. `facts`: the content's, when the caller has them. */
  saveTask(task: TaskRecord, facts?: ContentFacts): string {
    const json = JSON.stringify(task)
    this.saveTaskJson(task, json, JSON.stringify(summarizeTask(task, facts)))
    return json
  }

  /** `json` and `summary`: the record and its summary (summarizeTask) as JSON, serialised by the caller. */
  saveTaskJson(task: TaskKey, json: string, summary: string): void {
    this.write(() => this.upsertTask.run(task.id, task.state, task.type, task.createdAt, task.updatedAt, json, summary))
  }

  /** Runs fn in one transaction: one commit for many writes. */
  transaction<T>(fn: () => T): T {
    return this.write(() => this.inTransaction(fn) as T)
  }

  /** A full disk as the registry's error, naming the file and the room left (SQLite rolled the write back). */
  private write<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_FULL') throw err
      throw new TrinityError('TRINITY_ERR_STORE_FULL', `${this.file}: the disk holding hub.dataDir is full (${this.room()}); free space there, then submit again`, { cause: err })
    }
  }

  private room(): string {
    try {
      const fs = statfsSync(dirname(this.file))
      return `${fs.bavail * fs.bsize} of ${fs.blocks * fs.bsize} bytes free`
    } catch {
      return 'free space unknown'
    }
  }

  getTask(id: string): TaskRecord | undefined {
    const row = this.selectTask.get(id)
    return row === undefined ? undefined : (JSON.parse(row.record) as TaskRecord)
  }

  /** Tasks not yet finished: what the queue resumes with after a restart. */
  unfinishedTasks(): TaskRecord[] {
    const rows = this.db
      // From the contract's list, so a new active state (needs_input) is resumed too.
      .prepare(`SELECT record FROM tasks WHERE state IN (${[...ACTIVE_TASK_STATES].map((s) => `'${s}'`).join(', ')}) ORDER BY created_at, rowid`)
      .all() as { record: string }[]
    return rows.map((r) => JSON.parse(r.record) as TaskRecord)
  }

  listTasks(filter: TaskFilter): TaskRecord[] {
    const rows = (
      filter.state === undefined
        ? this.db.prepare('SELECT record FROM tasks ORDER BY updated_at DESC, rowid DESC LIMIT ?').all(filter.limit)
        : this.db
            .prepare('SELECT record FROM tasks WHERE state = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?')
            .all(filter.state, filter.limit)
    ) as { record: string }[]
    return rows.map((r) => JSON.parse(r.record) as TaskRecord)
  }

  /** What GET /tasks lists by default, from the summary column alone: no record is read. */
  listSummaries(filter: TaskFilter): TaskSummary[] {
    const rows = (
      filter.state === undefined
        ? this.db.prepare('SELECT summary FROM tasks ORDER BY updated_at DESC, rowid DESC LIMIT ?').all(filter.limit)
        : this.db
            .prepare('SELECT summary FROM tasks WHERE state = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?')
            .all(filter.state, filter.limit)
    ) as { summary: string }[]
    return rows.map((r) => JSON.parse(r.summary) as TaskSummary)
  }

  countTasksByState(): Map<string, number> {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM tasks GROUP BY state').all() as { state: string; n: number }[]
    return new Map(rows.map((r) => [r.state, r.n]))
  }

  /** Drops the oldest finished tasks beyond `keep`. */
  pruneFinished(keep: number): number {
    return this.db
      .prepare(
        `DELETE FROM tasks WHERE id IN (
           SELECT id FROM tasks WHERE state IN ('completed', 'failed', 'cancelled')
           ORDER BY updated_at DESC LIMIT -1 OFFSET ?)`,
      )
      .run(keep).changes
  }

  /** false when a message with this id is already logged. Keeps at most `maxCount`. */
  saveMessage(message: Message, maxCount: number): boolean {
    const inserted = this.insertMessage.run(message.id, message.ts, JSON.stringify(message))
    if (inserted.changes === 0) return false
    this.trimMessages.run(Number(inserted.lastInsertRowid) - maxCount)
    return true
  }

  recentMessages(limit: number, filter: { from?: string; to?: string } = {}): Message[] {
    const where: string[] = []
    const args: (string | number)[] = []
    if (filter.from !== undefined) { where.push(`json_extract(record, '$.from') = ?`); args.push(filter.from) }
    if (filter.to !== undefined) { where.push(`json_extract(record, '$.to') = ?`); args.push(filter.to) }
    const sql = `SELECT record FROM messages ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`
    const rows = this.db.prepare(sql).all(...args, limit) as { record: string }[]
    return rows.map((r) => JSON.parse(r.record) as Message).reverse()
  }

  messageCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n
  }

  /** Retention: keep at most maxCount messages, none older than maxAgeMs. */
  pruneMessages(maxCount: number, maxAgeMs: number, now: number): number {
    const old = this.db.prepare('DELETE FROM messages WHERE ts < ?').run(now - maxAgeMs).changes
    const over = this.db
      .prepare('DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq DESC LIMIT -1 OFFSET ?)')
      .run(maxCount).changes
    return old + over
  }

  /** Every write is in the WAL when its call returns: nothing to wait for. */
  durable(): undefined {
    return undefined
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}
