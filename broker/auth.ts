/**
 * Broker policy: who may connect, publish and subscribe, as the Aedes hooks
 * `authenticate`, `authorizePublish`, `authorizeSubscribe` and
 * `authorizeForward`, built once from options and passed at creation.
 *
 * Roles (config `broker.auth.users`, plus the hub's internal users):
 *  - admin: anything.
 *  - instance: publishes only under its own instance and message namespaces
 *    (its instance id is its username).
 *  - client: the same, plus task submission.
 *  - reader: publishes nothing (the dashboards' bus login from GET /auth/bus).
 * Every authenticated user may subscribe to anything under the topic prefix.
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
import { topicMatches, type TopicContract } from '../src/contract/topics.js'
import type { Logger } from '../src/log.js'

export interface BrokerPolicyOptions {
  readonly auth: { readonly enabled: boolean; readonly users: readonly BrokerUser[] }
  readonly topics: TopicContract
  /** Extra credentials accepted even when they are not in config (e.g. the hub's own admin). */
  readonly internalUsers?: readonly BrokerUser[]
  readonly logger: Logger
}

export type BrokerPolicy = Required<
  Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>
>

/** Where denied publishes go. `$` topics never match `#` or `+` [MQTT-4.7.2-1]; forwarding drops it anyway. */

interface Principal {
  readonly username: string
  readonly role: BrokerUser['role']
  /** Topic filters this user may publish to; ignored for admin. */
  readonly publishFilters: readonly string[]
}

interface Account {
  readonly principal: Principal
  readonly passwordDigest: Buffer
}

/** Digests first so that comparison time depends on neither password's length. */
function digest(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest()
}

function publishFiltersFor(user: BrokerUser, topics: TopicContract, logger: Logger): string[] {
  // admin publishes anywhere (checked by role); a reader (the dashboards' login, GET /auth/bus) nowhere.
  if (user.role === 'admin' || user.role === 'reader') return []
  try {
    const own = [topics.instanceNamespace(user.username), topics.messageNamespace(user.username)]
    return user.role === 'client' ? [...own, topics.taskSubmit] : own
  } catch (error) {
    // The username is not a valid topic id: the user may connect and subscribe, never publish.
    logger.warn({ username: user.username, err: error }, 'broker user name is not a valid instance id; it may not publish')
    return user.role === 'client' ? [topics.taskSubmit] : []
  }
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

export function createBrokerPolicy(options: BrokerPolicyOptions): BrokerPolicy {
  const { topics, logger } = options
  const accounts = new Map<string, Account>()
  // Internal users last: they win over a config user of the same name.
  for (const user of [...options.auth.users, ...(options.internalUsers ?? [])]) {
    accounts.set(user.username, {
      principal: { username: user.username, role: user.role, publishFilters: publishFiltersFor(user, topics, logger) },
      passwordDigest: digest(user.password),
    })
  }
  const principals = new WeakMap<Client, Principal>()
  const dummyDigest = digest('trinity: no such user')
  const prefixLevel = `${topics.prefix}/`

  const authenticate: BrokerPolicy['authenticate'] = (client, username, password, done) => {
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
    principals.set(client, account.principal)
    done(null, true)
  }

  const authorizePublish: BrokerPolicy['authorizePublish'] = (client, packet, done) => {
    if (!options.auth.enabled) {
      done(null)
      return
    }
    // client is null for a Last Will left over from before a restart: its owner is unknown.
    const principal = client === null ? undefined : principals.get(client)
    const allowed =
      principal !== undefined &&
      (principal.role === 'admin' || principal.publishFilters.some((filter) => topicMatches(filter, packet.topic)))
    if (!allowed) {
      logger.warn(
        { clientId: client?.id ?? null, username: principal?.username ?? null, topic: packet.topic },
        'broker dropped a publish the client may not make',
      )
      packet.topic = options.topics.deniedSink
      packet.retain = false
      packet.payload = Buffer.alloc(0)
    }
    done(null)
  }

  const authorizeSubscribe: BrokerPolicy['authorizeSubscribe'] = (client, subscription, done) => {
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
    if (principal?.role === 'admin' || subscription.topic.startsWith(prefixLevel)) {
      done(null, subscription)
      return
    }
    logger.warn({ clientId: client.id, topic: subscription.topic }, 'broker refused a subscription outside the topic prefix')
    done(null, null) // SUBACK return code 0x80 for this filter [MQTT-3.9.3]
  }

  const authorizeForward: BrokerPolicy['authorizeForward'] = (_client, packet) =>
    packet.topic === options.topics.deniedSink ? null : packet

  return { authenticate, authorizePublish, authorizeSubscribe, authorizeForward }
}
