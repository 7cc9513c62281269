/** Messages between instances: `trinity/message/{from}/{to}` and POST /send. */
import Type, { type Static } from 'typebox'
import { Id } from './common.js'

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

/** POST /send. `instance`: when `to` is a remote computer (one of `sync.peers`), the instance there to deliver to. */
export const SendRequest = Type.Object(
  { from: Id, to: Id, message: Type.String({ maxLength: 1_000_000 }), instance: Type.Optional(Id) },
  { additionalProperties: false },
)
export type SendRequest = Static<typeof SendRequest>
