/**
 * Wire payloads of the topic contract, as TypeBox schemas and their types.
 *
 * The same schemas validate MQTT payloads in the coordinator, HTTP bodies in
 * Fastify routes, and are printed into docs/topics.md. Unions are keyed on
 * one field (`kind` or `state`) so consumers can switch exhaustively.
 */
import Type, { type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import {
  HEALTH_STATES, ID_PATTERN, PRIORITIES, TASK_STATES, TASK_TYPE_PATTERN,
  type HealthState, type Priority as PriorityName, type TaskState,
} from './constants.js'
import { ERRORS, type ErrorCode } from '../errors.js'

// The dependency-free constants, for the browser (constants.ts), re-exported so servers import one module.
export * from './constants.js'
export type { HealthState, TaskState }
export type Priority = PriorityName

export const Id = Type.String({ pattern: ID_PATTERN, description: 'letters, digits, `.`, `_`, `-`; at most 64' })

export const Priority = Type.Enum([...PRIORITIES])

export const TaskType = Type.String({ pattern: TASK_TYPE_PATTERN, description: 'snake_case task type' })

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

import { PREVIEW_CHARS } from './preview.js'

export { PREVIEW_CHARS }

export const LegSummary = Type.Object({
  ...LegFields,
  /** The leg's last progress report, shortened like a preview. */
  progressPreview: Type.Optional(Type.String({ maxLength: PREVIEW_CHARS })),
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

/** What the coordinator sends to an instance inbox (QoS 1). */
const InboxTask = Type.Object({
  kind: Type.Literal('task'),
  task: Type.Object({ id: Id, type: TaskType, content: Type.Unknown(), priority: Priority }),
  leaseToken: Type.String(),
  leaseMs: Type.Integer(),
  attempt: Type.Integer(),
})
const InboxPing = Type.Object({ kind: Type.Literal('ping'), nonce: Type.String(), ts: Type.Number() })
const InboxCancel = Type.Object({ kind: Type.Literal('cancel'), taskId: Id, leaseToken: Type.String() })

const REPORT_STATES = ['started', 'progress', 'completed', 'failed'] as const

/** `trinity/instance/{id}/report`. leaseToken, when given, must match the current assignment. */
export const Report = Type.Object(
  {
    taskId: Id,
    state: Type.Enum([...REPORT_STATES]),
    output: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.String({ maxLength: 10_000 })),
    /** `failed` only: false when trying again cannot help (bad input); the leg fails at once. Default true. */
    retryable: Type.Optional(Type.Boolean()),
    leaseToken: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)
export type Report = Static<typeof Report>

/**
 * Tasks an instance runs at once when nobody says: the hub assumes it for an
 * instance whose config and birth give none, the agent SDK announces it when
 * `concurrency` is not set, and so does the demo fleet.
 */
export const DEFAULT_CONCURRENCY = 4

const INSTANCE_STATUS_STATES = ['online', 'offline', 'error', 'draining'] as const
/** `trinity/instance/{id}/status`, retained: the birth (online) and the Last Will (offline). */
export const InstanceStatus = Type.Object(
  {
    state: Type.Enum([...INSTANCE_STATUS_STATES]),
    session: Type.Integer({ minimum: 0, description: 'increases with every connection; a Will with an older session is stale' }),
    capabilities: Type.Optional(Type.Array(TaskType)),
    role: Type.Optional(Id),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    pid: Type.Optional(Type.Integer()),
    error: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
)
export type InstanceStatus = Static<typeof InstanceStatus>

/** `trinity/instance/{id}/heartbeat`: periodic, and the answer to an inbox ping (echoing its nonce). */
export const Heartbeat = Type.Object(
  { ts: Type.Number(), nonce: Type.Optional(Type.String()), inFlight: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: true },
)
export type Heartbeat = Static<typeof Heartbeat>

export const HealthStateSchema = Type.Enum([...HEALTH_STATES])
/** `trinity/health/{id}`, retained. */
export const Health = Type.Object({
  state: HealthStateSchema,
  responseMs: Type.Union([Type.Number(), Type.Null()]),
  /** Rolling average and 95th percentile over the instance's last 50 answers (null before the first). */
  avgMs: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
  p95Ms: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
  checkedAt: Type.Integer(),
  reason: Type.Optional(Type.String()),
})
export type Health = Static<typeof Health>

/** `trinity/message/{from}/{to}`; `to` may be `all`. */
export const Message = Type.Object(
  {
    id: Id,
    from: Id,
    to: Id,
    message: Type.String({ maxLength: 1_000_000 }),
    ts: Type.Integer(),
    /** The id of the message this one answers: automatic answers are never answered, so two bots cannot loop. */
    replyTo: Type.Optional(Id),
  },
  { additionalProperties: false },
)
export type Message = Static<typeof Message>
export const BROADCAST = 'all'

const InboxMessage = Type.Object({ kind: Type.Literal('message'), message: Message })
/** Every frame an instance inbox carries, keyed on `kind`: what the agent SDK decodes before it acts. */
export const InboxFrame = Type.Union([InboxTask, InboxMessage, InboxPing, InboxCancel])
export type InboxFrame = Static<typeof InboxFrame>

/** POST /send. `instance`: when `to` is a remote computer (one of `sync.peers`), the instance there to deliver to. */
export const SendRequest = Type.Object(
  { from: Id, to: Id, message: Type.String({ maxLength: 1_000_000 }), instance: Type.Optional(Id) },
  { additionalProperties: false },
)
export type SendRequest = Static<typeof SendRequest>

// ---------------------------------------------------------------------------
// The git bridge (issue #5): computers coordinating through a shared git repo.

/** `trinity/bridge/sync` and POST /sync: run a round now. */
export const SyncRequest = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 200 })), at: Type.Optional(Type.Integer()) },
  { additionalProperties: false },
)
export type SyncRequest = Static<typeof SyncRequest>

/**
 * `trinity/computer/{to}/send`: a message for computer `to`, carried by the git
 * bridge. `id` (optional) is an idempotency key; `from` the sending instance;
 * `instance` the recipient instance on computer `to`.
 */
export const ComputerSend = Type.Object(
  {
    message: Type.String({ maxLength: 1_000_000 }),
    id: Type.Optional(Id),
    from: Type.Optional(Id),
    instance: Type.Optional(Id),
  },
  { additionalProperties: false },
)
export type ComputerSend = Static<typeof ComputerSend>

/** `trinity/computer/{from}/message`: a message that arrived from computer `from` through the git bridge. */
export const ComputerMessage = Type.Object({
  id: Id,
  /** Position in the sender's `{from}_TO_{to}` file: 1, 2, 3… */
  seq: Type.Integer({ minimum: 1 }),
  from: Id,
  to: Id,
  fromInstance: Type.Optional(Id),
  instance: Type.Optional(Id),
  /** The bus topic it was mirrored from, when not `computer/{to}/send`. */
  topic: Type.Optional(Type.String()),
  message: Type.String(),
  ts: Type.Integer(),
})
export type ComputerMessage = Static<typeof ComputerMessage>

export const COMPUTER_STATES = ['SYNCING', 'OFFLINE', 'WORKING', 'IDLE', 'ACTIVE', 'EMERGENCY'] as const
export type ComputerState = (typeof COMPUTER_STATES)[number]

/** `trinity/computer/{n}/status`, retained: computer n's status file (its front matter), or this computer's own. */
export const ComputerStatus = Type.Object({
  computer: Id,
  state: Type.Enum([...COMPUTER_STATES]),
  /** When n last wrote its status file (ISO 8601); null if it never did. */
  updated: Type.Union([Type.String(), Type.Null()]),
  lastSync: Type.Union([Type.String(), Type.Null()]),
  queueDepth: Type.Integer({ minimum: 0 }),
  instances: Type.Array(Type.Object({ id: Id, health: Type.String() })),
  /** For each peer, the last message n has read from it. */
  read: Type.Record(Type.String(), Type.Object({ id: Id, seq: Type.Integer({ minimum: 0 }) })),
})
export type ComputerStatus = Static<typeof ComputerStatus>

export const BRIDGE_STATES = ['IDLE', 'SYNCING', 'ERROR'] as const
export type BridgeState = (typeof BRIDGE_STATES)[number]
const OUTGOING_STATES = ['queued', 'pushed', 'delivered'] as const

/** `trinity/bridge/status`, retained, after every change. */
export const BridgeStatus = Type.Object({
  computer: Id,
  state: Type.Enum([...BRIDGE_STATES]),
  lastRoundAt: Type.Union([Type.Integer(), Type.Null()]),
  lastSuccessAt: Type.Union([Type.Integer(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  /** Outgoing messages not yet pushed. */
  queued: Type.Integer({ minimum: 0 }),
  /** Pushed, but the recipient's status file does not name them as read yet. */
  awaitingReceipt: Type.Integer({ minimum: 0 }),
  nextRoundAt: Type.Union([Type.Integer(), Type.Null()]),
  /** The most recent outgoing messages (at most 100) and where each stands. */
  outgoing: Type.Array(Type.Object({ id: Id, to: Id, seq: Type.Union([Type.Integer(), Type.Null()]), state: Type.Enum([...OUTGOING_STATES]) })),
  at: Type.Integer(),
})
export type BridgeStatus = Static<typeof BridgeStatus>

/** `trinity/hub/errors`: why an input was rejected, as a stable code (src/errors.ts, docs/errors.md) and in words. */
export const HubError = Type.Object({
  topic: Type.String(),
  code: Type.Enum(Object.keys(ERRORS) as ErrorCode[], { description: 'a code of the error registry (docs/errors.md)' }),
  reason: Type.String(),
  at: Type.Integer(),
  clientId: Type.Optional(Type.String()),
})
export type HubError = Static<typeof HubError>

const Count = Type.Integer({ minimum: 0 })
/** Tasks per state: every state, zero included. */
export const TaskCounts = Type.Object(Object.fromEntries(TASK_STATES.map((state) => [state, Count])) as Record<TaskState, typeof Count>)
export type TaskCounts = Record<TaskState, number>

/** `trinity/hub/stats`, retained (and the body of GET /, with the hub's name and version). */
export const HubStats = Type.Object({
  /** `timeout`: missed a check, not yet offline (counted apart, not as offline). */
  instances: Type.Object({ total: Count, online: Count, degraded: Count, timeout: Count, offline: Count }),
  healthChecks: Count,
  messages: Count,
  tasks: TaskCounts,
  rejected: Count,
  at: Type.Integer(),
})
export type HubStats = Static<typeof HubStats>

export const CHILD_STATES = ['starting', 'running', 'backoff', 'error', 'stopping', 'stopped'] as const
export type ChildState = (typeof CHILD_STATES)[number]

/** One process the supervisor runs. */
export const SupervisedChild = Type.Object({
  name: Type.String(),
  kind: Type.Enum(['hub', 'bridge', 'instance']),
  instance: Type.Optional(Id),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  state: Type.Enum([...CHILD_STATES]),
  restarts: Type.Integer({ minimum: 0 }),
  startedAt: Type.Union([Type.Number(), Type.Null()]),
  readyAt: Type.Union([Type.Number(), Type.Null()]),
  lastExit: Type.Union([Type.Object({ code: Type.Union([Type.Integer(), Type.Null()]), signal: Type.Union([Type.String(), Type.Null()]), at: Type.Number() }), Type.Null()]),
  nextRestartAt: Type.Union([Type.Number(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
})
export type SupervisedChild = Static<typeof SupervisedChild>

/** `trinity/supervisor/status`, retained. */
export const SupervisorStatus = Type.Object({
  state: Type.Enum(['starting', 'running', 'stopping', 'stopped']),
  pid: Type.Integer(),
  startedAt: Type.Number(),
  children: Type.Array(SupervisedChild),
  at: Type.Number(),
})
export type SupervisorStatus = Static<typeof SupervisorStatus>

/** `trinity/supervisor/command`: restart a child (clears a crash loop). */
export const SupervisorCommand = Type.Object(
  { action: Type.Literal('restart'), target: Type.String({ minLength: 1 }), requestedBy: Type.Optional(Type.String()) },
  { additionalProperties: false },
)
export type SupervisorCommand = Static<typeof SupervisorCommand>

// ---------------------------------------------------------------------------
// Decoding: bytes from the bus to a typed value, or a reason.

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string }

interface Checker<T> {
  Check(value: unknown): value is T
  Errors(value: unknown): Iterable<{ instancePath: string; message: string; params?: unknown }>
}

const compiled = new WeakMap<TSchema, Checker<unknown>>()

function checkerFor<T extends TSchema>(schema: T): Checker<Static<T>> {
  let checker = compiled.get(schema)
  if (checker === undefined) {
    checker = Compile(schema)
    compiled.set(schema, checker)
  }
  return checker as Checker<Static<T>>
}

/** The first validation error as `field: what was expected`. */
function describeErrors(schema: TSchema, value: unknown): string {
  for (const error of checkerFor(schema).Errors(value)) {
    const field = error.instancePath === '' ? '(payload)' : error.instancePath.slice(1).replaceAll('/', '.')
    const params = error.params as { additionalProperties?: string[]; allowedValue?: unknown } | undefined
    if (params?.additionalProperties !== undefined) {
      return `${field}: unknown field ${params.additionalProperties.map((k) => JSON.stringify(k)).join(', ')}`
    }
    const allowed = (error.params as { allowedValues?: unknown[] } | undefined)?.allowedValues
    return `${field}: ${error.message}${allowed === undefined ? '' : ` (${allowed.map(String).join(', ')})`}`
  }
  return 'invalid'
}

export function validate<T extends TSchema>(schema: T, value: unknown): Decoded<Static<T>> {
  if (checkerFor(schema).Check(value)) return { ok: true, value }
  return { ok: false, reason: describeErrors(schema, value) }
}

export function decode<T extends TSchema>(schema: T, payload: Buffer | string): Decoded<Static<T>> {
  let value: unknown
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'))
  } catch (err) {
    return { ok: false, reason: `payload is not valid JSON: ${(err as Error).message}` }
  }
  return validate(schema, value)
}

const INBOX_FRAMES = { task: InboxTask, message: InboxMessage, ping: InboxPing, cancel: InboxCancel } as const
const InboxKind = Type.Object({ kind: Type.Enum(Object.keys(INBOX_FRAMES) as (keyof typeof INBOX_FRAMES)[]) })

/**
 * An inbox frame, checked against the schema its `kind` names: against the
 * union, a bad ping would be told it lacks a task's fields.
 */
export function decodeInboxFrame(payload: Buffer | string): Decoded<InboxFrame> {
  const head = decode(InboxKind, payload)
  if (!head.ok) return head
  const schema: TSchema = INBOX_FRAMES[head.value.kind]
  const checked = validate(schema, head.value)
  return checked.ok ? { ok: true, value: checked.value as InboxFrame } : checked
}
