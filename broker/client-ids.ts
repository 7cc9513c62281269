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
 *    and, for a persistent session (clean: false), as long as the session
 *    lasts: until a clean CONNECT on that id removes it [MQTT-3.1.2-6], or its
 *    owner has been away longer than `maxAwayMs` (`limits.sessionMaxAge`, the
 *    age past which the session's queued messages go too).
 * With disk persistence the bindings of persistent sessions are journaled
 * beside the sessions (`ClientIdJournal`, sqlite-persistence.ts): held in
 * memory only, a restart (kill -9 too) let the first user to connect take an
 * id another user's session held, with its queued messages.
 * A refused CONNECT gets CONNACK 5 "not authorized" [MQTT-3.2.2-3] and the
 * holder keeps its connection.
 */
import { CLIENT_ID_NAMESPACE, clientIds } from '../src/net/client-ids.js'
import type { Principal } from './acl.js'

/** The one connection that holds an id, or null: a persistent session whose owner is away (since `awaySince`). */
interface Holding {
  readonly username: string
  connection: object | null
  awaySince: number
}

/** A binding as journaled: `awaySince` null while its owner was connected (the broker stopped under it). */
export interface StoredBinding {
  readonly clientId: string
  readonly username: string
  readonly awaySince: number | null
}

/** Where the bindings of persistent sessions outlive the broker. */
export interface ClientIdJournal {
  load(): readonly StoredBinding[]
  put(binding: StoredBinding): void
  drop(clientId: string): void
}

export class ClientIdBindings {
  readonly #holdings = new Map<string, Holding>()
  #journal: ClientIdJournal | undefined
  #maxAwayMs = Number.POSITIVE_INFINITY

  constructor(private readonly prefix: string, private readonly now: () => number = Date.now) {}

  /**
   * Loads the journaled bindings and writes every later change there. An
   * owner connected when the broker stopped is away from now on; a binding
   * away longer than `maxAwayMs` is dropped with its session's age.
   */
  keep(journal: ClientIdJournal, maxAwayMs: number): void {
    this.#journal = journal
    this.#maxAwayMs = maxAwayMs
    const now = this.now()
    for (const binding of journal.load()) {
      const awaySince = binding.awaySince ?? now
      if (now - awaySince > maxAwayMs) journal.drop(binding.clientId)
      else this.#holdings.set(binding.clientId, { username: binding.username, connection: null, awaySince })
    }
  }

  /** Why `principal` may not connect as `clientId`, or null when it may. */
  refusal(principal: Principal, clientId: string): string | null {
    if (principal.role === 'admin') return null
    if (clientId.startsWith(CLIENT_ID_NAMESPACE)) {
      const own = clientIds.agent(this.prefix, principal.username)
      return clientId === own ? null : `client ids starting with ${CLIENT_ID_NAMESPACE} are the hub's; user ${principal.username} may use only ${own}`
    }
    const holding = this.#holdings.get(clientId)
    if (holding === undefined || holding.username === principal.username) return null
    if (holding.connection === null && this.now() - holding.awaySince > this.#maxAwayMs) {
      this.#forget(clientId)
      return null
    }
    return `client id is held by another user`
  }

  /** `connection` (an Aedes client) now holds `clientId` for `username`; a clean one ends any persistent session on it. */
  hold(clientId: string, username: string, connection: object, clean: boolean): void {
    this.#holdings.set(clientId, { username, connection, awaySince: this.now() })
    // The hub's namespace is bound by rule, not by holding: nothing to keep across a restart.
    if (clientId.startsWith(CLIENT_ID_NAMESPACE)) return
    if (clean) this.#journal?.drop(clientId)
    else this.#journal?.put({ clientId, username, awaySince: null })
  }

  /** `connection` closed: a clean session's id is free again, a persistent one stays its owner's. */
  release(clientId: string, connection: object, clean: boolean): void {
    const holding = this.#holdings.get(clientId)
    if (holding?.connection !== connection) return // taken over meanwhile by the same user
    if (clean) return this.#forget(clientId)
    holding.connection = null
    holding.awaySince = this.now()
    if (!clientId.startsWith(CLIENT_ID_NAMESPACE)) this.#journal?.put({ clientId, username: holding.username, awaySince: holding.awaySince })
  }

  #forget(clientId: string): void {
    this.#holdings.delete(clientId)
    this.#journal?.drop(clientId)
  }
}
