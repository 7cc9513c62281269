/**
 * Task summaries and events: a task without its bodies, so that lists and
 * the event stream stay small whatever a task carries. A 2 MB content used
 * to ride on every event and every list row; now it travels once, on the
 * admission event, and the result once, on the completion event
 * (docs/topics.md, "Task events").
 */
import { TERMINAL_TASK_STATES } from './constants.js'
import type { LegSummary, TaskEvent, TaskRecord, TaskSummary } from './payloads/task.js'
import { jsonBytes, preview } from './preview.js'

export { jsonBytes, preview }

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
    const { output: _output, progress, input, ...fields } = leg
    const summary: LegSummary = progress === undefined ? fields : { ...fields, progressPreview: preview(progress) }
    if (input !== undefined) {
      // The question is bounded, so it rides whole; the answer is any JSON, so a preview.
      const { answer, ...asked } = input
      summary.input = input.answeredAt === undefined ? asked : { ...asked, answerPreview: preview(answer) }
    }
    return summary
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
