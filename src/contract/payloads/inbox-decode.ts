/**
 * Decoding an inbox frame (inbox.ts): the agent SDK's and `trinity mcp`'s
 * first look at whatever the coordinator sends them.
 */
import type { TSchema } from 'typebox'
import { INBOX_FRAMES, InboxKind, type InboxFrame } from './inbox.js'
import { decode, validate, type Decoded } from './validate.js'

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
