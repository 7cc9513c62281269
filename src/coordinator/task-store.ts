/**
 * What the coordinator keeps durably, as an interface: tasks, the message log
 * and each instance's last birth (issue #13). The SQLite store (sqlite-store.ts) is
 * the default; a replicated backend (JetStream KV) implements the same
 * contract, and test/conformance/task-store.test.ts runs one suite against
 * every backend.
 *
 * Reads and writes are synchronous: the scheduler works on its own memory and
 * writes each change as it makes it. Durability is a separate question asked
 * with `durable()`, once, before anything that says "stored" leaves the hub (a
 * 202, a PUBACK, an event, an inbox frame):
 * - SQLite writes are on disk (the WAL) when the call returns, so `durable()`
 *   answers `undefined`: nothing to wait for, and nothing is deferred.
 * - A replicated store applies a write to its local view at once (so reads
 *   see it) and sends it on; `durable()` is a promise that settles once every
 *   write made so far is stored by a quorum, or rejects with the reason (for
 *   a leader that lost its lease, TRINITY_ERR_STORE_FENCED).
 *
 * A full disk fails a write with TRINITY_ERR_STORE_FULL, synchronously; the
 * scheduler turns it into a refused submission (507) rather than a lost one.
 */
import type { TaskState } from '../contract/constants.js'
import type { TaskRecord, TaskSummary } from '../contract/payloads/task.js'
import type { ContentFacts } from '../contract/task-summary.js'
import type { Message } from '../contract/payloads/message.js'
import type { InstanceStatus } from '../contract/payloads/instance.js'

/** What a birth said, kept across restarts: the session it opened and the profile it carried. */
export interface RememberedBirth {
  readonly id: string
  readonly session: number
  readonly profile: Pick<InstanceStatus, 'capabilities' | 'role' | 'name' | 'concurrency' | 'port'>
}

/** The columns a task is listed and resumed by; the rest is in its record. */
export type TaskKey = Pick<TaskRecord, 'id' | 'state' | 'type' | 'createdAt' | 'updatedAt'>

export interface TaskFilter {
  readonly state?: TaskState
  readonly limit: number
}

export interface TaskStore {
  /** Writes the task and its summary; returns the record's JSON. `facts`: the content's, when the caller has them. */
  saveTask(task: TaskRecord, facts?: ContentFacts): string
  /** `json` and `summary`: the record and its summary (summarizeTask) as JSON, serialised by the caller. */
  saveTaskJson(task: TaskKey, json: string, summary: string): void
  /**
   * Runs fn, whose writes go in one commit: all or none for SQLite. A
   * replicated store without multi-key transactions writes them one by one;
   * none is durable before `durable()` settles.
   */
  transaction<T>(fn: () => T): T
  getTask(id: string): TaskRecord | undefined
  /** Tasks not yet finished, oldest first: what the queue resumes with after a restart or a takeover. */
  unfinishedTasks(): TaskRecord[]
  /** Newest change first. */
  listTasks(filter: TaskFilter): TaskRecord[]
  /** What GET /tasks lists by default: summaries, newest change first, without reading whole records. */
  listSummaries(filter: TaskFilter): TaskSummary[]
  countTasksByState(): Map<string, number>
  /** Drops the oldest finished tasks beyond `keep`; returns how many went. */
  pruneFinished(keep: number): number

  /** false when a message with this id is already logged. Keeps at most `maxCount`. */
  saveMessage(message: Message, maxCount: number): boolean
  /** The last `limit` messages, oldest first, optionally only those from or to one id. */
  recentMessages(limit: number, filter?: { from?: string; to?: string }): Message[]
  messageCount(): number
  /** Retention: keep at most maxCount messages, none older than maxAgeMs; returns how many went. */
  pruneMessages(maxCount: number, maxAgeMs: number, now: number): number

  /** An instance's last birth, so a restarted hub knows which session it runs (registry.ts `restore`). */
  saveBirth(birth: RememberedBirth): void
  forgetBirth(id: string): void
  births(): RememberedBirth[]

  /**
   * undefined when every write made so far is durable; else a promise that
   * settles once they are, or rejects (TRINITY_ERR_STORE_FENCED: this hub may
   * no longer write; anything else: the store cannot say they are stored).
   */
  durable(): Promise<void> | undefined
  close(): void | Promise<void>
}
