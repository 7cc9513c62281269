/**
 * Task summaries and events: a task without its bodies, so that lists and
 * the event stream stay small whatever a task carries. A 2 MB content used
 * to ride on every event and every list row; now it travels once, on the
 * admission event, and the result once, on the completion event
 * (docs/topics.md, "Task events").
 */
import { PREVIEW_CHARS, TERMINAL_TASK_STATES, type LegSummary, type TaskEvent, type TaskRecord, type TaskSummary } from './payloads.js'

/** A string as is, anything else as JSON, cut to PREVIEW_CHARS characters ending in `…` when longer. */
export function preview(value: unknown, max = PREVIEW_CHARS): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '')
  if (text.length <= max) return text
  let end = max - 1
  // Never split a surrogate pair: half a character is not valid UTF-8.
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${text.slice(0, end)}…`
}

/** UTF-8 bytes of a value as JSON (counted by hand: the dashboard's browser code has no Buffer). */
export function jsonBytes(value: unknown): number {
  const json = JSON.stringify(value) ?? ''
  let bytes = 0
  for (let i = 0; i < json.length; i++) {
    const code = json.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < json.length) { bytes += 4; i++ }
    else bytes += 3
  }
  return bytes
}

/** What a summary says about the content; it never changes, so callers may cache it per task. */
export interface ContentFacts {
  readonly contentPreview: string
  readonly contentBytes: number
}

export function contentFacts(content: unknown): ContentFacts {
  return { contentPreview: preview(content), contentBytes: jsonBytes(content) }
}

export function summarizeTask(task: TaskRecord, facts: ContentFacts = contentFacts(task.content)): TaskSummary {
  const { content: _content, result, assignments, ...rest } = task
  const legs = assignments.map((leg): LegSummary => {
    const { output: _output, progress, ...fields } = leg
    return progress === undefined ? fields : { ...fields, progressPreview: preview(progress) }
  })
  const summary: TaskSummary = { ...rest, assignments: legs, contentPreview: facts.contentPreview, contentBytes: facts.contentBytes }
  if (result !== undefined) summary.resultPreview = preview(result)
  return summary
}

/**
 * The event for a change: the summary, with the full content when `admission`
 * (the first event, state `queued`) and the full result when the task has
 * reached a terminal state with one.
 */
export function taskEvent(task: TaskRecord, admission: boolean, facts?: ContentFacts): TaskEvent {
  const event: TaskEvent = summarizeTask(task, facts)
  if (admission) event.content = task.content
  if (TERMINAL_TASK_STATES.has(task.state) && task.result !== undefined) event.result = task.result
  return event
}
