/**
 * What a demo instance does with a message: every one is logged; the
 * fleet's generalist (C1 Mechanic, the instance that takes `general` tasks)
 * also answers each with an acknowledgement to its sender. An answer carries
 * `replyTo`, and an answer is never answered, nor a message from oneself, so
 * two such instances cannot talk to each other forever.
 */
import type { Message } from '../contract/payloads/message.js'

const PREVIEW = 200

/** The message text for a log line: messages may be up to 1 MB. */
export function preview(text: string): string {
  return text.length <= PREVIEW ? text : `${text.slice(0, PREVIEW)}… (${text.length} characters)`
}

/** The acknowledgement `self` sends back, or null when this message gets none. */
export function acknowledgement(message: Message, self: { id: string; name: string }): string | null {
  if (message.replyTo !== undefined || message.from === self.id) return null
  const quoted = message.message.length <= 60 ? message.message : `${message.message.slice(0, 60)}…`
  return `${self.name} got your message "${quoted}"`
}

/** Ids already answered: a message redelivered (QoS 1, a persistent session) is answered once. */
export class AnsweredIds {
  private readonly ids = new Set<string>()
  constructor(private readonly max = 1000) {}

  /** True the first time an id is seen. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false
    this.ids.add(id)
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string)
    return true
  }
}
