/**
 * Task summaries and events: a task without its bodies, so that lists and
 * the event stream stay small whatever a task carries. A 2 MB content used
 * to ride on every event and every list row; now it travels once, on the
 * admission event, and the result once, on the completion event
 * (docs/topics.md, "Task events").
 *
 * Summaries are built field by field, not with object rest (`{ content,
 * ...rest } = task`): V8 copies a rest pattern in its runtime, and that copy
 * was most of the hub's time in summaries, up to six per task (issue #12:
 * about 15 µs each against well under 1 µs). A field added to the record or
 * a leg is a compile error below until it is placed in the summary or left out.
 */
import { TERMINAL_TASK_STATES } from './constants.js'
import type { Assignment, LegSummary, TaskEvent, TaskRecord, TaskSummary } from './payloads/task.js'
import { jsonBytes, preview, utf8Bytes } from './preview.js'

export { jsonBytes, preview }

/** What a summary says about the content; it never changes, so callers may cache it per task. */
export interface ContentFacts {
  readonly contentPreview: string
  readonly contentBytes: number
}

export function contentFacts(content: unknown): ContentFacts {
  // JSON.stringify says undefined for an undefined content, whatever its type claims.
  return contentFactsOf(content, JSON.stringify(content))
}

/** `contentFacts`, from the content's JSON when the caller has it already (serialising it once, not twice). */
export function contentFactsOf(content: unknown, contentJson: string | undefined): ContentFacts {
  const json = contentJson ?? ''
  return { contentPreview: preview(typeof content === 'string' ? content : json), contentBytes: utf8Bytes(json) }
}

// The fields each summary copies as they are, and those it shortens or leaves out: together, every field.
type CopiedTaskField = 'id' | 'type' | 'priority' | 'state' | 'strategy' | 'createdAt' | 'updatedAt' | 'maxAttempts' | 'error'
type CopiedLegField = 'targets' | 'state' | 'instance' | 'attempts' | 'leaseToken' | 'leaseExpiresAt' | 'notBefore' | 'tried' | 'error'
const everyTaskField: [Exclude<keyof TaskRecord, CopiedTaskField | 'content' | 'result' | 'assignments'>] extends [never] ? true : never = true
const everyLegField: [Exclude<keyof Assignment, CopiedLegField | 'output' | 'progress' | 'input'>] extends [never] ? true : never = true
void everyTaskField
void everyLegField

function summarizeLeg(leg: Assignment): LegSummary {
  // In the record's order (a leg's error comes last of its own fields), so the JSON reads as it did.
  const summary: LegSummary = {
    targets: leg.targets, state: leg.state, instance: leg.instance, attempts: leg.attempts,
    leaseToken: leg.leaseToken, leaseExpiresAt: leg.leaseExpiresAt, notBefore: leg.notBefore, tried: leg.tried,
  }
  if (leg.error !== undefined) summary.error = leg.error
  if (leg.progress !== undefined) summary.progressPreview = preview(leg.progress)
  const input = leg.input
  if (input !== undefined) {
    // The question is bounded, so it rides whole; the answer is any JSON, so a preview.
    const asked: NonNullable<LegSummary['input']> = input.choices === undefined
      ? { question: input.question, askedAt: input.askedAt }
      : { question: input.question, choices: input.choices, askedAt: input.askedAt }
    if (input.answeredAt !== undefined) {
      asked.answeredAt = input.answeredAt
      asked.answerPreview = preview(input.answer)
    }
    summary.input = asked
  }
  return summary
}

export function summarizeTask(task: TaskRecord, facts: ContentFacts = contentFacts(task.content)): TaskSummary {
  const assignments = task.assignments.map(summarizeLeg)
  const summary: TaskSummary = task.error === undefined
    ? {
        id: task.id, type: task.type, priority: task.priority, state: task.state, strategy: task.strategy,
        createdAt: task.createdAt, updatedAt: task.updatedAt, maxAttempts: task.maxAttempts,
        assignments, contentPreview: facts.contentPreview, contentBytes: facts.contentBytes,
      }
    : {
        id: task.id, type: task.type, priority: task.priority, state: task.state, strategy: task.strategy,
        createdAt: task.createdAt, updatedAt: task.updatedAt, maxAttempts: task.maxAttempts, error: task.error,
        assignments, contentPreview: facts.contentPreview, contentBytes: facts.contentBytes,
      }
  if (task.result !== undefined) summary.resultPreview = preview(task.result)
  return summary
}

/** Whether a change's event carries the result: the task ended with one. */
function carriesResult(task: TaskRecord): boolean {
  return TERMINAL_TASK_STATES.has(task.state) && task.result !== undefined
}

/**
 * The event for a change: the summary, with the full content when `admission`
 * (the first event, state `queued`) and the full result when the task has
 * reached a terminal state with one.
 */
export function taskEvent(task: TaskRecord, admission: boolean, facts?: ContentFacts): TaskEvent {
  const event: TaskEvent = summarizeTask(task, facts)
  if (admission) event.content = task.content
  if (carriesResult(task)) event.result = task.result
  return event
}

/**
 * `taskEvent` as JSON, the same text, made from the summary's JSON (which a
 * store writes anyway) and the content's (which never changes): the summary
 * is not serialised twice, nor a big content once per change. `contentJson`:
 * `JSON.stringify(task.content)`, needed only on admission.
 */
export function taskEventJson(task: TaskRecord, summaryJson: string, admission: boolean, contentJson: string | undefined): string {
  let tail = ''
  // JSON.stringify leaves out a member whose value it cannot write (undefined), and so does this.
  if (admission && contentJson !== undefined) tail += `,"content":${contentJson}`
  if (carriesResult(task)) {
    const resultJson = JSON.stringify(task.result) as string | undefined
    if (resultJson !== undefined) tail += `,"result":${resultJson}`
  }
  return tail === '' ? summaryJson : `${summaryJson.slice(0, -1)}${tail}}`
}
