/**
 * The HTTP API's answers and query strings, as TypeBox schemas and their
 * types: the hub uses them as Fastify `response` and `querystring` schemas
 * (src/coordinator/http.ts), and the CLI, the dashboard and the tests import
 * the types instead of keeping copies.
 *
 * Fastify serializes a response with its schema and drops every property the
 * schema does not name, so each schema here lists everything the route
 * returns; a field added to an answer must be added here first.
 */
import Type, { type Static } from 'typebox'
import { Id } from './payloads/common.js'
import { TaskCounts, TaskRecord, TaskStateSchema, TaskSummary } from './payloads/task.js'
import { Health, HealthStateSchema } from './payloads/instance.js'
import { HubStats } from './payloads/hub.js'
import { Message } from './payloads/message.js'
import { CHILD_STATES } from './payloads/supervisor.js'
import { ERRORS, type ErrorCode } from '../errors.js'
import { SCOPES } from './constants.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

/** The supervisor's view of an instance's process (from `trinity/supervisor/status`). */
export const InstanceProcess = Type.Object({
  state: Type.Enum([...CHILD_STATES]),
  pid: Nullable(Type.Integer()),
  restarts: Type.Integer({ minimum: 0 }),
  reason: Nullable(Type.String()),
})
export type InstanceProcess = Static<typeof InstanceProcess>

/** One instance as the registry sees it: an item of GET /instances. */
export const InstanceView = Type.Object({
  id: Id,
  name: Type.String(),
  role: Type.String(),
  capabilities: Type.Array(Type.String()),
  port: Nullable(Type.Integer()),
  healthUrl: Nullable(Type.String()),
  /** How tasks reach it: `mqtt` its inbox; `http` POST {url}/task; `exec` the hub runs its command per task (always online while the hub runs). */
  adapter: Type.Enum(['mqtt', 'http', 'exec']),
  source: Type.Enum(['config', 'joined']),
  connected: Type.Boolean(),
  session: Nullable(Type.Integer()),
  /** The shown state: the health verdict, or `error` while the supervisor reports a crash loop. */
  state: HealthStateSchema,
  concurrency: Type.Integer(),
  inFlight: Type.Integer({ minimum: 0 }),
  /** Last, average and 95th percentile of the last 50 answers, in ms (2 decimals). */
  responseMs: Type.Object({ last: Nullable(Type.Number()), avg: Nullable(Type.Number()), p95: Nullable(Type.Number()) }),
  checks: Type.Integer({ minimum: 0 }),
  lastCheckAt: Nullable(Type.Integer()),
  lastSeenAt: Nullable(Type.Integer()),
  reason: Nullable(Type.String()),
  /** The supervisor's view of its process, when a supervisor runs it. */
  process: Nullable(InstanceProcess),
  /** The last 40 health records, oldest first, as published on `health/{id}`. */
  recentChecks: Type.Array(Health),
})
export type InstanceView = Static<typeof InstanceView>

/** GET /instances. */
export const InstanceList = Type.Object({ instances: Type.Array(InstanceView) })
export type InstanceList = Static<typeof InstanceList>

/** GET / : the hub's name, version and bus, with its stats (`trinity/hub/stats`). */
export const HubSummary = Type.Object({
  name: Type.Literal('trinity'),
  version: Type.String(),
  uptimeSeconds: Type.Integer({ minimum: 0 }),
  broker: Type.Object({ mode: Type.String(), connected: Type.Boolean() }),
  ...HubStats.properties,
})
export type HubSummary = Static<typeof HubSummary>

/**
 * GET /health: 200 while the coordinator is on the bus, else 503. `store: "full"` while the disk
 * holding the store is full (submissions get 507; accepted tasks wait in memory): `status` says
 * `degraded`, still 200, since a restart would not make room.
 */
export const HubHealth = Type.Object({
  status: Type.Enum(['ok', 'degraded']),
  bus: Type.Enum(['connected', 'disconnected']),
  store: Type.Enum(['ok', 'full']),
  /** leader: this hub coordinates (a single hub always does). standby (store.backend nats-kv): it waits for the leader lease. */
  role: Type.Enum(['leader', 'standby']),
  /** A standby's view of the leader's HTTP URL (null while no hub holds the lease); absent on the leader. */
  leader: Type.Optional(Type.Union([Type.String(), Type.Null()])),
})
export type HubHealth = Static<typeof HubHealth>

/** GET /tasks: counts by state, and summaries (or whole records with `?full=true`). */
export const TaskList = Type.Object({
  counts: TaskCounts,
  tasks: Type.Union([Type.Array(TaskSummary), Type.Array(TaskRecord)]),
})
export type TaskList = Static<typeof TaskList>

/** GET /messages: the most recent messages (those the hub keeps). */
export const MessageList = Type.Object({ messages: Type.Array(Message) })
export type MessageList = Static<typeof MessageList>

/** GET /tasks/:id: the record, and while it is not moving, why (`waiting`; not stored). */
export const TaskDetail = Type.Object({ ...TaskRecord.properties, waiting: Type.Optional(Type.String()) })
export type TaskDetail = Static<typeof TaskDetail>

/** POST /task: the admitted (or, for a repeated id, the existing) task. */
export const TaskAdmitted = Type.Object({ id: Id, state: TaskStateSchema, assigned: Type.Array(Id), task: TaskRecord })
export type TaskAdmitted = Static<typeof TaskAdmitted>

/** POST /tasks/:id/respond (202): the answer is stored and on its way to `instance`; the task runs again. */
export const TaskAnswered = Type.Object({ id: Id, state: TaskStateSchema, instance: Id })
export type TaskAnswered = Static<typeof TaskAnswered>

/**
 * GET /auth/bus: who the token is, and the bus login a page uses for MQTT
 * over WebSocket (a read-only user; null when the broker needs none).
 * `name` is null when the hub has no tokens (its API is open).
 */
export const AuthSession = Type.Object({
  name: Type.Union([Id, Type.Null()]),
  scope: Type.Enum([...SCOPES]),
  bus: Type.Union([Type.Object({ username: Type.String(), password: Type.String() }), Type.Null()]),
})
export type AuthSession = Static<typeof AuthSession>

/** Every 4xx and 5xx answer: a registry code, the message, and the offending field when one is to blame. */
export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.Enum(Object.keys(ERRORS) as ErrorCode[]),
    message: Type.String(),
    field: Type.Optional(Type.String()),
  }),
})
export type ErrorBody = Static<typeof ErrorBody>

/** The error answers a route can give, for its `response` schema. */
export const ERROR_RESPONSES = { '4xx': ErrorBody, '5xx': ErrorBody } as const

/** The most summaries one GET /tasks returns, and the most whole records (`full=true`): README, HTTP API. */
export const MAX_TASKS = 1000
export const MAX_FULL_TASKS = 100

/** `:id` in a route's path. */
export const IdParams = Type.Object({ id: Id })

/** GET /tasks?state=&limit=&full= */
export const TaskListQuery = Type.Object({
  state: Type.Optional(TaskStateSchema),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TASKS })),
  full: Type.Optional(Type.Boolean({ description: 'true: whole records (content, result, outputs) instead of summaries' })),
}, { additionalProperties: false })

/** GET /messages?limit=&from=&to= */
export const MessageListQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), from: Type.Optional(Id), to: Type.Optional(Id) }, { additionalProperties: false })
