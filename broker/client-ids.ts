/**
 * Client ids bound to users (broker auth on; issue #14, finding 4).
 *
 * A CONNECT with a client id that is already connected takes the session
 * over and disconnects the holder [MQTT-3.1.4-2]. Unbound, any user could
 * kick the coordinator off the bus (an instance user reconnecting as
 * `trinity-coordinator-trinity` did it 19 times in 9.5 s; 181 of 200
 * acknowledged submissions were lost) or take over an instance's persistent
 * session, queued inbox and subscriptions included. The rule:
 *  - admins (the hub's own clients among them) may use any id;
 *  - ids in Trinity's namespace (`trinity-…`, src/net/bus-client.ts
 *    `clientIds`) are the hub's: another user may use only the agent SDK's
 *    id for its own instance id, `trinity-agent-{prefix}-{username}`;
 *  - any other id belongs to the user that holds it: while it is connected,
 *    and, for a persistent session (clean: false), until the broker stops.
 * A refused CONNECT gets CONNACK 5 "not authorized" [MQTT-3.2.2-3] and the
 * holder keeps its connection.
 */
import { CLIENT_ID_NAMESPACE, clientIds } from '../src/net/bus-client.js'
import type { Principal } from './acl.js'

/** The one connection that holds an id, or null: a persistent session whose owner is away. */
interface Holding {
  readonly username: string
  connection: object | null
}

export class ClientIdBindings {
  readonly #holdings = new Map<string, Holding>()

  constructor(private readonly prefix: string) {}

  /** Why `principal` may not connect as `clientId`, or null when it may. */
  refusal(principal: Principal, clientId: string): string | null {
    if (principal.role === 'admin') return null
    if (clientId.startsWith(CLIENT_ID_NAMESPACE)) {
      const own = clientIds.agent(this.prefix, principal.username)
      return clientId === own ? null : `client ids starting with ${CLIENT_ID_NAMESPACE} are the hub's; user ${principal.username} may use only ${own}`
    }
    const holder = this.#holdings.get(clientId)?.username
    return holder === undefined || holder === principal.username ? null : `client id is held by another user`
  }

  /** `connection` (an Aedes client) now holds `clientId` for `username`. */
  hold(clientId: string, username: string, connection: object): void {
    this.#holdings.set(clientId, { username, connection })
  }

  /** `connection` closed: a clean session's id is free again, a persistent one stays its owner's. */
  release(clientId: string, connection: object, clean: boolean): void {
    const holding = this.#holdings.get(clientId)
    if (holding?.connection !== connection) return // taken over meanwhile by the same user
    if (clean) this.#holdings.delete(clientId)
    else holding.connection = null
  }
}
