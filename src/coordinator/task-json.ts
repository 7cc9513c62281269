/**
 * A live task's summary as JSON, serialised once per change (issue #12).
 *
 * Every change is written as the record and its summary, and published as
 * an event: the summary, with the content on admission and the result at
 * the end. Made separately, that was three summaries per change (about half
 * of the hub's serialising); here the summary's JSON is made once per
 * change, written as it is, and the event spliced from it (`taskEventJson`:
 * the same text as serialising the event). The content's preview and size
 * are worked out once per task, at admission.
 *
 * A change is recognised without being told of it: records are changed by
 * assigning their fields and replacing their legs, never by changing a leg
 * or a body in place (leg-lifecycle.ts returns new legs; contents and
 * results are never mutated), so a record whose fields and legs are the same
 * values as when its summary was made has that summary still; anything else
 * is made again. Entries live as long as their record object (a WeakMap): a
 * finished task, dropped by the scheduler, takes its entry with it.
 *
 * The content's JSON is not kept (splicing it into each record would spare
 * serialising it once per change): for a big content that doubles what a
 * queued task holds in memory, and its write to the store costs more than
 * its serialisation.
 */
import type { TaskRecord } from '../contract/payloads/task.js'
import { contentFactsOf, summarizeTask, taskEventJson, type ContentFacts } from '../contract/task-summary.js'

interface Entry {
  readonly facts: ContentFacts
  /** The record's own keys and values, then its legs, when `summary` was made. */
  seen: unknown[] | undefined
  summary: string | undefined
}

function valuesOf(task: TaskRecord): unknown[] {
  const values: unknown[] = []
  for (const key in task) values.push(key, task[key as keyof TaskRecord])
  for (const leg of task.assignments) values.push(leg)
  return values
}

function sameValues(task: TaskRecord, seen: readonly unknown[]): boolean {
  let i = 0
  for (const key in task) {
    if (seen[i] !== key || seen[i + 1] !== task[key as keyof TaskRecord]) return false
    i += 2
  }
  for (const leg of task.assignments) if (seen[i++] !== leg) return false
  return i === seen.length
}

export class TaskJson {
  private readonly entries = new WeakMap<TaskRecord, Entry>()

  /**
   * The admission event (state `queued`, with the content): the content's
   * preview and size are worked out here, from the same JSON. Called before
   * the task joins the queue, so a content that cannot be serialised is
   * refused there and leaves nothing behind.
   */
  admission(task: TaskRecord): string {
    const contentJson = JSON.stringify(task.content) as string | undefined
    if (!this.entries.has(task)) this.create(task, contentJson)
    return taskEventJson(task, this.summary(task), true, contentJson)
  }

  /** The summary's JSON (summarizeTask), as the task is now. */
  summary(task: TaskRecord): string {
    const entry = this.entryOf(task)
    if (entry.summary === undefined || entry.seen === undefined || !sameValues(task, entry.seen)) {
      entry.summary = JSON.stringify(summarizeTask(task, entry.facts))
      entry.seen = valuesOf(task)
    }
    return entry.summary
  }

  /** The event for a change after admission, as the task is now (taskEvent, serialised). */
  event(task: TaskRecord): string {
    return taskEventJson(task, this.summary(task), false, undefined)
  }

  private entryOf(task: TaskRecord): Entry {
    return this.entries.get(task) ?? this.create(task, JSON.stringify(task.content))
  }

  private create(task: TaskRecord, contentJson: string | undefined): Entry {
    const entry: Entry = { facts: contentFactsOf(task.content, contentJson), seen: undefined, summary: undefined }
    this.entries.set(task, entry)
    return entry
  }
}
