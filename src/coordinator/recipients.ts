/**
 * Who may receive a message: an instance the registry knows (configured or
 * joined, in any state), `all`, a remote computer (one of `sync.peers`), or a
 * sender in the message log (`dashboard`, `ops`: a reply to one reaches it on
 * the log and the bus). Anyone else would get a message that is logged and
 * reaches no one, so POST /send answers 404 and the bus handler rejects it on
 * hub/errors.
 */
import { BROADCAST } from '../contract/payloads/message.js'
import type { Registry } from './registry.js'

/** How many known ids an error names before it says "… (n in all)". */
const LISTED = 20

/** Why `to` cannot receive a message, naming the known ids (and the id whose name matches); null when it can. */
export function unknownRecipient(to: string, registry: Registry, peers: readonly string[], hasSent: (id: string) => boolean): string | null {
  if (to === BROADCAST || registry.get(to) !== undefined || peers.includes(to) || hasSent(to)) return null
  const all = registry.all()
  // "Builder" is the name of `builder`: the likeliest slip, so say which id was meant.
  const lower = to.toLowerCase()
  const meant = all.find((i) => i.name.toLowerCase() === lower || i.id.toLowerCase() === lower)
  const ids = all.map((i) => i.id)
  const known = ids.length === 0 ? 'no instances yet' : `known: ${ids.slice(0, LISTED).join(', ')}${ids.length > LISTED ? `, … (${ids.length} in all)` : ''}`
  return `"${to}" is not an instance id (${known}; or "${BROADCAST}")${meant === undefined ? '' : `; did you mean "${meant.id}"?`}`
}
