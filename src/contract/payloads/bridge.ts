/**
 * The git bridge's payloads (issue #5): computers coordinating through a
 * shared git repo. Sync requests, messages to and from other computers,
 * their statuses, and the bridge's own status.
 */
import Type, { type Static } from 'typebox'
import { Id } from './common.js'

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
