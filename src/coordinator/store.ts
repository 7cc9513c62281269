/**
 * The durable store: tasks and the message log in one SQLite file (WAL).
 *
 * Writes are synchronous (better-sqlite3): when save() returns, the row is in
 * the WAL, so a task is on disk before the hub acknowledges it (HTTP 202 or
 * the PUBACK that MQTT.js sends after our message handler returns). With
 * `sync: normal` that survives kill -9 of the hub; `sync: full` also fsyncs
 * every commit, for power loss.
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { ACTIVE_TASK_STATES, type TaskState } from '../contract/constants.js'
import type { TaskRecord } from '../contract/payloads/task.js'
import type { Message } from '../contract/payloads/message.js'

export interface StoreOptions {
  file: string
  sync: 'normal' | 'full'
}

export class Store {
  private readonly db: Database.Database
  private readonly upsertTask: Database.Statement<[string, string, string, number, number, string]>
  private readonly insertMessage: Database.Statement<[string, number, string]>
  private readonly selectTask: Database.Statement<[string], { record: string }>
  private readonly trimMessages: Database.Statement<[number]>

  constructor(options: StoreOptions) {
    if (options.file !== ':memory:') mkdirSync(dirname(options.file), { recursive: true })
    this.db = new Database(options.file)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`)
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        record TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, updated_at);
      CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        ts INTEGER NOT NULL,
        record TEXT NOT NULL
      );
    `)
    this.upsertTask = this.db.prepare(
      `INSERT INTO tasks (id, state, type, created_at, updated_at, record) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, record = excluded.record`,
    )
    this.insertMessage = this.db.prepare('INSERT OR IGNORE INTO messages (id, ts, record) VALUES (?, ?, ?)')
    this.selectTask = this.db.prepare('SELECT record FROM tasks WHERE id = ?')
    this.trimMessages = this.db.prepare('DELETE FROM messages WHERE seq <= ?')
  }

  /** Writes the task; returns the JSON written (the same text is its event payload). */
  saveTask(task: TaskRecord): string {
    const json = JSON.stringify(task)
    this.saveTaskJson(task, json)
    return json
  }

  saveTaskJson(task: Pick<TaskRecord, 'id' | 'state' | 'type' | 'createdAt' | 'updatedAt'>, json: string): void {
    this.upsertTask.run(task.id, task.state, task.type, task.createdAt, task.updatedAt, json)
  }

  /** Runs fn in one transaction: one commit for many writes. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)()
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

  listTasks(filter: { state?: TaskState; limit: number }): TaskRecord[] {
    const rows = (
      filter.state === undefined
        ? this.db.prepare('SELECT record FROM tasks ORDER BY updated_at DESC, rowid DESC LIMIT ?').all(filter.limit)
        : this.db
            .prepare('SELECT record FROM tasks WHERE state = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?')
            .all(filter.state, filter.limit)
    ) as { record: string }[]
    return rows.map((r) => JSON.parse(r.record) as TaskRecord)
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

  close(): void {
    if (this.db.open) this.db.close()
  }
}
