/**
 * What the coordinator sends to an instance inbox (`trinity/instance/{id}/inbox`):
 * a task to run, a message, a health ping, a cancellation, the answer to a
 * question a task asked (`input`). Keyed on `kind`;
 * the agent SDK decodes every frame before it acts on it (inbox-decode.ts).
 */
import Type, { type Static } from 'typebox'
import { Id, Priority, TaskType } from './common.js'
import { Message } from './message.js'

/** Sent with QoS 1. */
const InboxTask = Type.Object({
  kind: Type.Literal('task'),
  task: Type.Object({ id: Id, type: TaskType, content: Type.Unknown(), priority: Priority }),
  leaseToken: Type.String(),
  leaseMs: Type.Integer(),
  attempt: Type.Integer(),
})
const InboxPing = Type.Object({ kind: Type.Literal('ping'), nonce: Type.String(), ts: Type.Number() })
const InboxCancel = Type.Object({ kind: Type.Literal('cancel'), taskId: Id, leaseToken: Type.String() })
const InboxMessage = Type.Object({ kind: Type.Literal('message'), message: Message })
/** The answer to a `needs_input` report, for the attempt whose lease token it carries. Sent with QoS 1. */
const InboxInput = Type.Object({ kind: Type.Literal('input'), taskId: Id, leaseToken: Type.String(), answer: Type.Unknown() })

/** Every frame an instance inbox carries, keyed on `kind`: what the agent SDK decodes before it acts. */
export const InboxFrame = Type.Union([InboxTask, InboxMessage, InboxPing, InboxCancel, InboxInput])
export type InboxFrame = Static<typeof InboxFrame>

/** Each frame's schema by its `kind` (inbox-decode.ts checks a frame against the one its kind names). */
export const INBOX_FRAMES = { task: InboxTask, message: InboxMessage, ping: InboxPing, cancel: InboxCancel, input: InboxInput } as const
/** What is read of a frame first: its kind. */
export const InboxKind = Type.Object({ kind: Type.Enum(Object.keys(INBOX_FRAMES) as (keyof typeof INBOX_FRAMES)[]) })
