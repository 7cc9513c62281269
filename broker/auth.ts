/**
 * Broker policy: who may connect, publish and subscribe, as the Aedes hooks
 * `preConnect`, `authenticate`, `authorizePublish`, `authorizeSubscribe` and
 * `authorizeForward`, built once from options and passed at creation.
 *
 * Roles (config `broker.auth.users`, plus the hub's internal users) and what
 * each may publish and subscribe to: acl.ts. With auth on, also:
 *  - client ids are bound to users (client-ids.ts), across restarts with disk persistence;
 *  - a Will must be on a topic its user may publish to: checked at CONNECT
 *    (refused with CONNACK 5, said in the log) and again when it is published,
 *    also for Wills stored before a crash (`mayPublishStoredWill`, called by
 *    sqlite-persistence.ts at start, against the owner's current ACL);
 *  - at most `maxConnectionsPerUser` connections per config user.
 * The role `reader` publishes nothing: the dashboards' bus login from GET /auth/bus.
 * Always: a topic, filter or Will topic containing U+0000 closes the
 * connection [MQTT-1.5.3-2].
 *
 * A denied PUBLISH is acknowledged and dropped, as Mosquitto does: MQTT 3.1.1
 * lets the server either acknowledge it or close the connection
 * [MQTT-3.3.5-2], and closing makes MQTT.js reconnect and resend the same
 * message forever. Aedes has no "drop" answer, so the packet is redirected to
 * a sink topic that `authorizeForward` never delivers.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { AuthErrorCode, type AedesOptions, type AuthenticateError, type Client } from 'aedes'
import type { BrokerUser } from '../src/config/schema.js'
import type { ErrorCode } from '../src/errors.js'
import type { TopicContract } from '../src/contract/topics.js'
import type { Logger } from '../src/log.js'
import { mayPublish, maySubscribe, principalFor, type Principal } from './acl.js'
import { ClientIdBindings, type ClientIdJournal } from './client-ids.js'

export interface BrokerPolicyOptions {
  readonly auth: { readonly enabled: boolean; readonly users: readonly BrokerUser[] }
  readonly topics: TopicContract
  /** Extra credentials accepted even when they are not in config (e.g. the hub's own admin). */
  readonly internalUsers?: readonly BrokerUser[]
  /** Connections one config user may hold at once (auth on); default no bound. */
  readonly maxConnectionsPerUser?: number
  /** Told of each refusal a client should hear about (embedded.ts says it on hub/errors). */
  readonly report?: (refusal: Refusal) => void
  readonly logger: Logger
}

/** A refusal worth saying on hub/errors. */
export interface Refusal {
  readonly code: ErrorCode
  readonly reason: string
  readonly topic: string
  readonly clientId: string | null
}

export type BrokerPolicy = Required<
  Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>
> & {
  /** The user a connected client logged in as; null with auth off. The owner a stored Will is kept under. */
  usernameOf(client: object): string | null
  /** A Will stored before a restart, whose connection is gone: may it be published, by its owner's current ACL? */
  mayPublishStoredWill(owner: string | null, will: { readonly topic: string }): boolean
  /** Client-id bindings of persistent sessions outlive a restart there (disk persistence); `maxAwayMs`: `limits.sessionMaxAge`. */
  keepClientIds(journal: ClientIdJournal, maxAwayMs: number): void
}

interface Account {
  readonly principal: Principal
  readonly passwordDigest: Buffer
}

/** Digests first so that comparison time depends on neither password's length. */
function digest(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest()
}

/**
 * `$share/{group}/{filter}` is an MQTT 5 shared subscription [MQTT-4.8.2].
 * MQTT 3.1.1 knows no such thing: granted, it would be a literal filter under
 * `$share`, which no client can publish to, so the subscriber would wait for
 * ever. Refused with a failure SUBACK instead, so the client knows at once.
 */
function isSharedSubscription(filter: string): boolean {
  return filter === '$share' || filter.startsWith('$share/')
}

/** [MQTT-1.5.3-2]: a UTF-8 string must not contain U+0000; a receiver that gets one closes the connection. */
function hasNull(text: string): boolean {
  return text.includes('\u0000')
}

function refusedConnect(message: string): AuthenticateError {
  const error = new Error(message) as AuthenticateError
  error.returnCode = AuthErrorCode.NOT_AUTHORIZED // [MQTT-3.2.2-3] CONNACK 5
  return error
}

export function createBrokerPolicy(options: BrokerPolicyOptions): BrokerPolicy {
  const { topics, logger } = options
  const accounts = new Map<string, Account>()
  // Internal users last: they win over a config user of the same name.
  for (const [user, internal] of [...options.auth.users.map((u) => [u, false] as const), ...(options.internalUsers ?? []).map((u) => [u, true] as const)]) {
    accounts.set(user.username, { principal: principalFor(user, topics, internal, logger), passwordDigest: digest(user.password) })
  }
  const principals = new WeakMap<object, Principal>()
  /** Will topics from CONNECT packets, for `authenticate` (which Aedes gives no packet). */
  const willTopics = new WeakMap<object, string>()
  const bindings = new ClientIdBindings(topics.prefix)
  const connections = new Map<string, Set<Client>>()
  const maxConnections = options.maxConnectionsPerUser ?? Infinity
  const dummyDigest = digest('trinity: no such user')
  const report = options.report ?? ((): void => undefined)

  const preConnect: BrokerPolicy['preConnect'] = (client, packet, done) => {
    if (packet.will !== undefined && packet.will !== null) willTopics.set(client, packet.will.topic)
    done(null, true)
  }

  /** Why `principal` may not connect now as `client`, or null. */
  const connectRefusal = (client: Client, principal: Principal): string | null => {
    const idRefusal = bindings.refusal(principal, client.id)
    if (idRefusal !== null) return idRefusal
    const will = willTopics.get(client)
    if (will !== undefined && !mayPublish(principal, will)) return `its Will is on ${will}, where user ${principal.username} may not publish`
    if (!principal.internal) {
      // A takeover of its own id replaces a connection rather than adding one.
      const others = [...(connections.get(principal.username) ?? [])].filter((c) => c.id !== client.id)
      if (others.length >= maxConnections) return `user ${principal.username} already has ${others.length} connections (limits.maxConnectionsPerUser)`
    }
    return null
  }

  const admit = (client: Client, principal: Principal): void => {
    principals.set(client, principal)
    bindings.hold(client.id, principal.username, client, client.clean)
    const live = connections.get(principal.username) ?? new Set<Client>()
    live.add(client)
    connections.set(principal.username, live)
    client.conn.once('close', () => {
      bindings.release(client.id, client, client.clean)
      live.delete(client)
      if (live.size === 0 && connections.get(principal.username) === live) connections.delete(principal.username)
    })
  }

  const authenticate: BrokerPolicy['authenticate'] = (client, username, password, done) => {
    const will = willTopics.get(client)
    if (will !== undefined && hasNull(will)) {
      logger.warn({ clientId: client.id, username: username ?? null }, 'broker closed a connection: its Will topic contains U+0000 [MQTT-1.5.3-2]')
      done(refusedConnect('Will topic contains U+0000'), false)
      return
    }
    if (!options.auth.enabled) {
      done(null, true)
      return
    }
    const account = username === undefined ? undefined : accounts.get(username)
    const given = digest(password ?? Buffer.alloc(0))
    // Compare even for unknown users, so timing does not reveal which names exist.
    const matches = timingSafeEqual(given, account?.passwordDigest ?? dummyDigest)
    if (account === undefined || !matches || password === undefined) {
      logger.warn({ clientId: client.id, username }, 'broker refused a connection: bad username or password')
      const error = new Error('bad username or password') as AuthenticateError
      error.returnCode = AuthErrorCode.BAD_USERNAME_OR_PASSWORD // [MQTT-3.2.2-3] CONNACK 4
      done(error, false)
      return
    }
    const refusal = connectRefusal(client, account.principal)
    if (refusal !== null) {
      logger.warn({ clientId: client.id, username: account.principal.username }, `broker refused a connection: not authorized: ${refusal}`)
      done(refusedConnect(refusal), false)
      return
    }
    admit(client, account.principal)
    done(null, true)
  }

  const sink = (packet: { topic: string; retain: boolean; payload: Buffer | string }): void => {
    packet.topic = topics.deniedSink
    packet.retain = false
    packet.payload = Buffer.alloc(0)
  }

  const authorizePublish: BrokerPolicy['authorizePublish'] = (client, packet, done) => {
    if (hasNull(packet.topic)) {
      const clientId = client?.id ?? null
      logger.warn({ clientId, username: client === null ? null : (principals.get(client)?.username ?? null) }, 'broker closed a connection: a PUBLISH topic contains U+0000 [MQTT-1.5.3-2]')
      report({ code: 'TRINITY_ERR_BAD_TOPIC', reason: 'topic contains U+0000 [MQTT-1.5.3-2]: connection closed', topic: packet.topic.replaceAll('\u0000', '\\u0000'), clientId })
      if (client === null) sink(packet)
      done(client === null ? null : new Error('topic contains U+0000'))
      return
    }
    if (!options.auth.enabled) {
      done(null)
      return
    }
    // client is null for a Will Aedes publishes for a broker that is gone: its owner is unknown.
    const principal = client === null ? undefined : principals.get(client)
    if (principal === undefined || !mayPublish(principal, packet.topic)) {
      logger.warn(
        { clientId: client?.id ?? null, username: principal?.username ?? null, topic: packet.topic },
        'broker dropped a publish the client may not make',
      )
      sink(packet)
    }
    done(null)
  }

  const authorizeSubscribe: BrokerPolicy['authorizeSubscribe'] = (client, subscription, done) => {
    if (hasNull(subscription.topic)) {
      logger.warn({ clientId: client.id, username: principals.get(client)?.username ?? null }, 'broker closed a connection: a SUBSCRIBE filter contains U+0000 [MQTT-1.5.3-2]')
      report({ code: 'TRINITY_ERR_BAD_TOPIC', reason: 'subscription filter contains U+0000 [MQTT-1.5.3-2]: connection closed', topic: subscription.topic.replaceAll('\u0000', '\\u0000'), clientId: client.id })
      done(new Error('subscription filter contains U+0000'))
      return
    }
    if (isSharedSubscription(subscription.topic)) {
      logger.warn({ clientId: client.id, topic: subscription.topic }, 'broker refused a shared subscription: the embedded broker speaks MQTT 3.1.1, which has none (use broker.mode external with Mosquitto 2)')
      done(null, null) // SUBACK return code 0x80 for this filter [MQTT-3.9.3]
      return
    }
    if (!options.auth.enabled) {
      done(null, subscription)
      return
    }
    const principal = principals.get(client)
    if (principal !== undefined && maySubscribe(principal, subscription.topic, topics)) {
      done(null, subscription)
      return
    }
    logger.warn({ clientId: client.id, username: principal?.username ?? null, topic: subscription.topic }, 'broker refused a subscription the user may not read')
    done(null, null) // SUBACK return code 0x80 for this filter [MQTT-3.9.3]
  }

  const authorizeForward: BrokerPolicy['authorizeForward'] = (_client, packet) =>
    packet.topic === topics.deniedSink ? null : packet

  const usernameOf = (client: object): string | null => principals.get(client)?.username ?? null

  const mayPublishStoredWill = (owner: string | null, will: { readonly topic: string }): boolean => {
    if (hasNull(will.topic)) return false
    if (!options.auth.enabled) return true
    const principal = owner === null ? undefined : accounts.get(owner)?.principal
    if (principal !== undefined && mayPublish(principal, will.topic)) return true
    logger.warn({ username: owner, topic: will.topic }, principal === undefined
      ? 'broker dropped a stored Will: its owner is unknown or no longer a user'
      : 'broker dropped a stored Will: its owner may not publish there')
    return false
  }

  const keepClientIds = (journal: ClientIdJournal, maxAwayMs: number): void => bindings.keep(journal, maxAwayMs)

  return { preConnect, authenticate, authorizePublish, authorizeSubscribe, authorizeForward, usernameOf, mayPublishStoredWill, keepClientIds }
}
