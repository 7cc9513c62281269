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
import type { Assignment } from '../../src/contract/payloads/task.js'
import { jsonBytes, preview } from '../../src/contract/preview.js'
import { isRecord, num, str } from './platform.js'

export type TaskLeg = Omit<Assignment, 'output' | 'progress'>

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

function leg(value: unknown): TaskLeg | null {
  if (!isRecord(value)) return null
  // The leg without its output and progress, which can be large and the page does not show.
  const { output: _output, progress: _progress, ...rest } = value
  return rest as unknown as TaskLeg
}

/**
 * One task event or list item as a row, given the row the page already has
 * for it. Null for a payload that is not a task (no id, no times).
 */
export function toTaskRow(wire: unknown, previous: TaskRow | undefined): TaskRow | null {
  if (!isRecord(wire)) return null
  const id = str(wire['id'])
  const updatedAt = num(wire['updatedAt'])
  if (id === null || updatedAt === null) return null
  const hasContent = 'content' in wire
  const hasResult = 'result' in wire && wire['result'] !== undefined
  const row: TaskRow = {
    id,
    type: str(wire['type']) ?? previous?.type ?? '—',
    priority: (str(wire['priority']) ?? previous?.priority ?? 'normal') as Priority,
    state: (str(wire['state']) ?? previous?.state ?? 'queued') as TaskState,
    createdAt: num(wire['createdAt']) ?? previous?.createdAt ?? updatedAt,
    updatedAt,
    maxAttempts: num(wire['maxAttempts']) ?? previous?.maxAttempts ?? 0,
    assignments: Array.isArray(wire['assignments']) ? wire['assignments'].flatMap((a) => leg(a) ?? []) : previous?.assignments ?? [],
    contentPreview: typeof wire['contentPreview'] === 'string' ? wire['contentPreview']
      : hasContent ? preview(wire['content']) : previous?.contentPreview ?? '',
    contentBytes: num(wire['contentBytes']) ?? (hasContent ? jsonBytes(wire['content']) : previous?.contentBytes ?? null),
    resultPreview: typeof wire['resultPreview'] === 'string' ? wire['resultPreview']
      : hasResult ? preview(wire['result']) : previous?.resultPreview ?? null,
  }
  const error = str(wire['error'])
  if (error !== null) row.error = error
  return row
}
