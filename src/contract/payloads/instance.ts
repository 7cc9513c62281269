/**
 * What an instance says about itself and what the hub says about it: its
 * retained status (birth and Last Will) on `trinity/instance/{id}/status`,
 * its heartbeats, and the health verdict on `trinity/health/{id}`.
 */
import Type, { type Static } from 'typebox'
import { HEALTH_STATES } from '../constants.js'
import { Id, TaskType } from './common.js'

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
