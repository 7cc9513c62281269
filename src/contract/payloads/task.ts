/**
 * Task payloads: the submission (`trinity/task/submit`, POST /task), the
 * record and its legs, the summaries GET /tasks lists, the events on
 * `trinity/task/{id}/event`, the reports instances send on
 * `trinity/instance/{id}/report`, and a person's answer to a leg that asked
 * for input (`trinity/task/{id}/respond`, POST /tasks/:id/respond).
 */
import Type, { type Static } from 'typebox'
import { TASK_STATES, type TaskState } from '../constants.js'
import { PREVIEW_CHARS } from '../preview.js'
import { Count, Id, Priority, TaskType } from './common.js'

/** `trinity/task/submit` and POST /task. A client-given id is an idempotency key. */
export const TaskSubmit = Type.Object(
  {
    type: TaskType,
    content: Type.Unknown({ description: 'any JSON value; usually a string' }),
    priority: Type.Optional(Priority),
    id: Type.Optional(Id),
  },
  { additionalProperties: false },
)
export type TaskSubmit = Static<typeof TaskSubmit>

export const TaskStateSchema = Type.Enum([...TASK_STATES])

/** Bounds of a question a leg asks (report state `needs_input`): it rides on every summary and event of its task. */
const QUESTION_CHARS = 2000
const MAX_CHOICES = 20
const CHOICE_CHARS = 200

const Question = Type.String({ minLength: 1, maxLength: QUESTION_CHARS })
const Choices = Type.Array(Type.String({ minLength: 1, maxLength: CHOICE_CHARS }), { minItems: 1, maxItems: MAX_CHOICES })

/** What a leg asked a person, as every view shows it (the answer itself only on the full record). */
const InputAskedFields = {
  question: Question,
  choices: Type.Optional(Choices),
  askedAt: Type.Integer(),
  answeredAt: Type.Optional(Type.Integer()),
}

/** A leg's question and, once given, the answer: kept on the leg after it resumes, for the record. */
const LegInput = Type.Object({ ...InputAskedFields, answer: Type.Optional(Type.Unknown()) })

/** A leg's fields that every view carries (its `output` and `progress` only the full record). */
const LegFields = {
  /** Instance ids or roles that may take this leg. */
  targets: Type.Array(Type.String()),
  state: TaskStateSchema,
  instance: Type.Union([Id, Type.Null()]),
  attempts: Type.Integer(),
  leaseToken: Type.Union([Type.String(), Type.Null()]),
  leaseExpiresAt: Type.Union([Type.Integer(), Type.Null()]),
  notBefore: Type.Integer(),
  tried: Type.Array(Id),
  error: Type.Optional(Type.String()),
}

/** One leg of a task: the whole task for `least-loaded`/`round-robin`, one per target for `all`. */
export const Assignment = Type.Object({
  ...LegFields,
  output: Type.Optional(Type.Unknown()),
  progress: Type.Optional(Type.Unknown()),
  /** Set when the leg asked for input (state `needs_input`); kept, with the answer, after it resumes. */
  input: Type.Optional(LegInput),
})
export type Assignment = Static<typeof Assignment>

/** A task's fields that every view carries (its `content` and `result` only the full record). */
const TaskFields = {
  id: Id,
  type: TaskType,
  priority: Priority,
  state: TaskStateSchema,
  strategy: Type.String(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
  maxAttempts: Type.Integer(),
  error: Type.Optional(Type.String()),
}

/** The full task record: served by GET /tasks/:id and GET /tasks?full=true. */
export const TaskRecord = Type.Object({
  ...TaskFields,
  content: Type.Unknown(),
  assignments: Type.Array(Assignment),
  result: Type.Optional(Type.Unknown()),
})
export type TaskRecord = Static<typeof TaskRecord>

export const LegSummary = Type.Object({
  ...LegFields,
  /** The leg's last progress report, shortened like a preview. */
  progressPreview: Type.Optional(Type.String({ maxLength: PREVIEW_CHARS })),
  /** The leg's question (bounded, so whole), without the answer; `answerPreview` once answered. */
  input: Type.Optional(Type.Object({ ...InputAskedFields, answerPreview: Type.Optional(Type.String({ maxLength: PREVIEW_CHARS })) })),
})
export type LegSummary = Static<typeof LegSummary>

/**
 * A task without its bodies: what GET /tasks lists. Previews are the value
 * as is when it is a string, JSON otherwise, cut to PREVIEW_CHARS.
 */
export const TaskSummary = Type.Object({
  ...TaskFields,
  assignments: Type.Array(LegSummary),
  contentPreview: Type.String({ maxLength: PREVIEW_CHARS }),
  /** UTF-8 bytes of the content as JSON. */
  contentBytes: Type.Integer({ minimum: 0 }),
  /** Present when the task has a result. */
  resultPreview: Type.Optional(Type.String({ maxLength: PREVIEW_CHARS })),
})
export type TaskSummary = Static<typeof TaskSummary>

/**
 * `trinity/task/{id}/event`, after every change: the summary, plus the full
 * `content` on the admission event (state `queued`, the first) and the full
 * `result` on the event where the task completes.
 */
export const TaskEvent = Type.Object({
  ...TaskSummary.properties,
  content: Type.Optional(Type.Unknown()),
  result: Type.Optional(Type.Unknown()),
})
export type TaskEvent = Static<typeof TaskEvent>

const REPORT_STATES = ['started', 'progress', 'completed', 'failed', 'needs_input'] as const

/**
 * `trinity/instance/{id}/report`. leaseToken, when given, must match the
 * current assignment. `needs_input` asks a person: it carries the `question`
 * (and optional `choices`), and the leg's lease stops running until the
 * answer (POST /tasks/:id/respond) comes back in an `input` inbox frame.
 * One flat object, so a refusal names the field (a union would only say
 * "matches no schema"); `reportProblem` (report-rules.ts) checks what the schema cannot.
 */
export const Report = Type.Object(
  {
    taskId: Id,
    state: Type.Enum([...REPORT_STATES]),
    output: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.String({ maxLength: 10_000 })),
    /** `failed` only: false when trying again cannot help (bad input); the leg fails at once. Default true. */
    retryable: Type.Optional(Type.Boolean()),
    leaseToken: Type.Optional(Type.String()),
    /** `needs_input` only, and required there. */
    question: Type.Optional(Question),
    /** `needs_input` only: the answers a person may pick from (a typed answer is allowed too). */
    choices: Type.Optional(Choices),
  },
  { additionalProperties: false },
)
export type Report = Static<typeof Report>

/**
 * `trinity/task/{id}/respond` and POST /tasks/:id/respond: the answer to a
 * leg in `needs_input` (any JSON). `instance` picks the leg when several
 * wait (fan-out); without it the leg that asked first gets the answer.
 */
export const TaskRespond = Type.Object(
  { answer: Type.Unknown({ description: 'any JSON value; a string for a typed answer' }), instance: Type.Optional(Id) },
  { additionalProperties: false },
)
export type TaskRespond = Static<typeof TaskRespond>

/** Tasks per state: every state, zero included. */
export const TaskCounts = Type.Object(Object.fromEntries(TASK_STATES.map((state) => [state, Count])) as Record<TaskState, typeof Count>)
export type TaskCounts = Record<TaskState, number>
