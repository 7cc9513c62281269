/**
 * What the page keeps of a task: the row it draws, never the body. Task
 * events and GET /tasks carry a summary (`contentPreview`, `contentBytes`,
 * `resultPreview`; the full `content` only on the admission event, the full
 * `result` only on the terminal one); older hubs send the whole record every
 * time. Both fold into one TaskRow here: a missing preview is derived from
 * the body by the hub's rule, and an event without a body keeps the preview
 * the page already had, so a row's content never goes blank. Keeping only
 * previews also bounds the page's memory: 500 tasks of 2 MB each would not be.
 */
import type { Priority, TaskState } from '../../src/contract/constants.js'
import type { Assignment, LegSummary } from '../../src/contract/payloads/task.js'
import { jsonBytes, preview } from '../../src/contract/preview.js'
import type { TaskWire } from './payloads.js'

/** What the page keeps of a leg's question (the approval queue draws it); never the answer, which may be large. */
export interface LegQuestion { question: string; choices?: string[]; askedAt: number }

export type TaskLeg = Omit<Assignment, 'output' | 'progress' | 'input'> & { input?: LegQuestion }

export interface TaskRow {
  id: string
  type: string
  priority: Priority
  state: TaskState
  createdAt: number
  updatedAt: number
  maxAttempts: number
  assignments: TaskLeg[]
  error?: string
  /** At most PREVIEW_CHARS characters: strings as is, anything else as JSON, cut with `…`. */
  contentPreview: string
  /** The content's size in UTF-8 bytes (of its JSON when it is not a string), when known. */
  contentBytes: number | null
  resultPreview: string | null
}

/** The leg without its output, progress and answer, which can be large and the page does not show. */
function leg(value: Assignment | LegSummary): TaskLeg {
  const { output: _output, progress: _progress, progressPreview: _preview, input, ...rest } = value as Assignment & LegSummary
  if (input === undefined) return rest
  const question: LegQuestion = { question: input.question, askedAt: input.askedAt, ...(input.choices === undefined ? {} : { choices: input.choices }) }
  return { ...rest, input: question }
}

/**
 * One task event or list item (decoded with the contract's schemas,
 * payloads.ts) as a row, given the row the page already has for it.
 */
export function toTaskRow(wire: TaskWire, previous: TaskRow | undefined): TaskRow {
  const hasContent = 'content' in wire
  const hasResult = 'result' in wire && wire.result !== undefined
  const summary = 'contentPreview' in wire ? wire : undefined
  const row: TaskRow = {
    id: wire.id,
    type: wire.type,
    priority: wire.priority,
    state: wire.state,
    createdAt: wire.createdAt,
    updatedAt: wire.updatedAt,
    maxAttempts: wire.maxAttempts,
    assignments: wire.assignments.map(leg),
    contentPreview: summary?.contentPreview ?? (hasContent ? preview(wire.content) : previous?.contentPreview ?? ''),
    contentBytes: summary?.contentBytes ?? (hasContent ? jsonBytes(wire.content) : previous?.contentBytes ?? null),
    resultPreview: summary?.resultPreview ?? (hasResult ? preview(wire.result) : previous?.resultPreview ?? null),
  }
  if (wire.error !== undefined) row.error = wire.error
  return row
}
