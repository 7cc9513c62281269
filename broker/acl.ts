/**
 * What each role may publish and subscribe to, as topic filters (the
 * broker's ACL, used by auth.ts when `broker.auth.enabled`):
 *  - admin: anything.
 *  - instance U: publishes under `{p}/instance/U/#` and `{p}/message/U/#`;
 *    subscribes to its own instance topics (`{p}/instance/U/#`: its inbox,
 *    its status), `{p}/health/U`, and messages addressed to it or to all
 *    (`{p}/message/+/U`, `{p}/message/+/all`). Never `{p}/#`: other
 *    instances' inboxes carry their task contents and lease tokens.
 *  - client U: publishes like an instance, plus `{p}/task/submit` and answers to tasks that ask (`{p}/task/+/respond`); subscribes
 *    to anything under the prefix (it is an operator's view: `trinity tail`).
 *  - reader: publishes nothing; subscribes to anything under the prefix (the
 *    dashboards' login from GET /auth/bus, given to holders of a read token).
 */
import type { BrokerUser } from '../src/config/schema.js'
import { BROADCAST } from '../src/contract/payloads/message.js'
import { filterCovers, topicMatches, type TopicContract } from '../src/contract/topics.js'
import type { Logger } from '../src/log.js'

export interface Principal {
  readonly username: string
  readonly role: BrokerUser['role']
  /** Topic filters this user may publish to; ignored for admin. */
  readonly publishFilters: readonly string[]
  /** Filters a subscription must lie within; null: anything under the prefix (ignored for admin). */
  readonly subscribeFilters: readonly string[] | null
  /** The hub's own credential (not from config): exempt from `maxConnectionsPerUser`. */
  readonly internal: boolean
}

export function principalFor(user: BrokerUser, topics: TopicContract, internal: boolean, logger: Logger): Principal {
  const base = { username: user.username, role: user.role, internal }
  if (user.role === 'admin') return { ...base, publishFilters: [], subscribeFilters: null }
  if (user.role === 'reader') return { ...base, publishFilters: [], subscribeFilters: null }
  try {
    const own = [topics.instanceNamespace(user.username), topics.messageNamespace(user.username)]
    if (user.role === 'client') return { ...base, publishFilters: [...own, topics.taskSubmit, topics.anyTaskRespond], subscribeFilters: null }
    const reads = [topics.instanceNamespace(user.username), topics.health(user.username), topics.messagesTo(user.username), topics.messagesTo(BROADCAST)]
    return { ...base, publishFilters: own, subscribeFilters: reads }
  } catch (error) {
    // The username is not a valid topic id: the user may connect, never publish, and (an instance) read nothing.
    logger.warn({ username: user.username, err: error }, 'broker user name is not a valid instance id; it may not publish')
    return { ...base, publishFilters: user.role === 'client' ? [topics.taskSubmit, topics.anyTaskRespond] : [], subscribeFilters: user.role === 'client' ? null : [] }
  }
}

export function mayPublish(principal: Principal, topic: string): boolean {
  return principal.role === 'admin' || principal.publishFilters.some((filter) => topicMatches(filter, topic))
}

export function maySubscribe(principal: Principal, filter: string, topics: TopicContract): boolean {
  if (principal.role === 'admin') return true
  if (principal.subscribeFilters === null) return filter.startsWith(`${topics.prefix}/`)
  return principal.subscribeFilters.some((allowed) => filterCovers(allowed, filter))
}
