/**
 * What the coordinator does with each message it takes from the bus: one
 * handler per topic kind it subscribes to, in one table, behind a small
 * dispatcher (the Aedes habit; the dashboard's web/src/store.ts does the same
 * for the page).
 *
 * The table of subscriptions below is the one list of what the coordinator
 * listens to. `BusHandlers` is a mapped type over its keys, so subscribing
 * to a new kind without a handler is a compile error, and a handler for a
 * kind nobody subscribes to is one too.
 *
 * Each handler is synchronous and writes to the store before it returns, so
 * the PUBACK that MQTT.js sends afterwards means "on disk". Bad input is
 * rejected with a code and a reason on `{prefix}/hub/errors`; a handler that
 * throws is a bug, reported as TRINITY_ERR_INTERNAL, and the hub goes on.
 * Every payload is bounded by `limits.maxDepth` as it is parsed (a value
 * nested thousands deep overflows the stack when it is stored, issue #14).
 * A topic a subscription matches whose id levels are not ids (`bad id!`, 65
 * characters) is refused with TRINITY_ERR_BAD_TOPIC, as a bad payload is,
 * rather than dropped unsaid (issue #14).
 */
import { formatSize } from '../config/size.js'
import { isTrinityError, type ErrorCode } from '../errors.js'
import type { Logger } from '../log.js'
import { Heartbeat, InstanceStatus, type Health } from '../contract/payloads/instance.js'
import { Message } from '../contract/payloads/message.js'
import { SupervisorStatus } from '../contract/payloads/supervisor.js'
import { Report, TaskRespond, TaskSubmit } from '../contract/payloads/task.js'
import { reportProblem } from '../contract/payloads/report-rules.js'
import { decode as decodeUnbounded, type Decoded } from '../contract/payloads/validate.js'
import { ID_PATTERN } from '../contract/constants.js'
import { isTopicId, topicMatches, type ParsedTopic, type TopicContract, type TopicKind } from '../contract/topics.js'
import { unsupportedId, type BrokerFlavor } from './broker-ids.js'
import type { HealthMonitor } from './health.js'
import type { Registry } from './registry.js'
import type { Scheduler } from './scheduler.js'

interface Subscription {
  /** The filter to subscribe with. */
  readonly filter: (topics: TopicContract) => string
  readonly qos: 0 | 1
  /** Bounded by `limits.maxPayload`, as HTTP bodies are: what carries a client's data into the store. */
  readonly sizeChecked: boolean
}

/** Every topic the coordinator listens to, in subscription order. */
export const SUBSCRIPTIONS = {
  taskSubmit: { filter: (t) => t.taskSubmit, qos: 1, sizeChecked: true },
  instanceReport: { filter: (t) => t.anyInstanceReport, qos: 1, sizeChecked: true },
  taskRespond: { filter: (t) => t.anyTaskRespond, qos: 1, sizeChecked: true },
  instanceStatus: { filter: (t) => t.anyInstanceStatus, qos: 1, sizeChecked: false },
  instanceHeartbeat: { filter: (t) => t.anyInstanceHeartbeat, qos: 0, sizeChecked: false },
  message: { filter: (t) => t.anyMessage, qos: 1, sizeChecked: true },
  supervisorStatus: { filter: (t) => t.supervisorStatus, qos: 1, sizeChecked: false },
} as const satisfies { readonly [K in TopicKind]?: Subscription }

type SubscribedKind = keyof typeof SUBSCRIPTIONS

type Handler<K extends SubscribedKind> = (topic: Extract<ParsedTopic, { kind: K }>, payload: Buffer, raw: string) => void

/** One handler for every subscribed kind, exactly. */
type BusHandlers = { readonly [K in SubscribedKind]: Handler<K> }

/** The subscription request: filter → QoS. */
export function subscriptionsFor(topics: TopicContract): Record<string, { qos: 0 | 1 }> {
  return Object.fromEntries(Object.values(SUBSCRIPTIONS).map((s) => [s.filter(topics), { qos: s.qos }]))
}

function isSubscribed(kind: TopicKind): kind is SubscribedKind {
  return Object.hasOwn(SUBSCRIPTIONS, kind)
}

/** What the handlers reach in the coordinator: its parts, and its I/O as functions. */
export interface BusContext {
  readonly scheduler: Pick<Scheduler, 'submit' | 'report' | 'respond' | 'instanceLost' | 'dispatch'>
  readonly registry: Pick<Registry, 'get' | 'applyStatus' | 'maxJoined'>
  readonly health: Pick<HealthMonitor, 'heartbeat'>
  readonly log: Logger
  /** `code` is what a program matches on; `reason` says it in words. */
  readonly reject: (topic: string, code: ErrorCode, reason: string) => void
  /** The hub's topics: what a refused topic is matched against. */
  readonly topics: TopicContract
  /** `limits.maxDepth`: how deep any field of a payload may nest. */
  readonly maxDepth: number
  /** `broker.flavor`: which ids the broker cannot carry in a topic level (broker-ids.ts). */
  readonly brokerFlavor: BrokerFlavor
  /** Publishes an instance's health, retained. */
  publishHealth(instanceId: string, health: Health): void
  /** Keeps the instance's birth (session, profile) for the next start of the hub (task-store.ts). */
  rememberBirth(instanceId: string): void
  /** True (once) for a message this hub published itself: its echo is not news. */
  isOwnEcho(messageId: string): boolean
  /** Why `to` cannot receive a message, or null when it can. */
  unknownRecipient(to: string): string | null
  acceptMessage(message: Message): void
  supervisorStatus(status: SupervisorStatus): void
}

/** The code a failed decode is refused with: its nesting, or its shape. */
function refusalCode(failed: Extract<Decoded<unknown>, { ok: false }>): ErrorCode {
  return failed.tooDeep === true ? 'TRINITY_ERR_PAYLOAD_TOO_DEEP' : 'TRINITY_ERR_BAD_PAYLOAD'
}

function busHandlers(ctx: BusContext): BusHandlers {
  const { scheduler, registry, log, reject } = ctx
  const decode: typeof decodeUnbounded = (schema, payload) => decodeUnbounded(schema, payload, { maxDepth: ctx.maxDepth })
  return {
    taskSubmit: (_t, payload, raw) => {
      const decoded = decode(TaskSubmit, payload)
      if (!decoded.ok) return reject(raw, refusalCode(decoded), decoded.reason)
      const unsupported = decoded.value.id === undefined ? null : unsupportedId(ctx.brokerFlavor, 'id', decoded.value.id)
      if (unsupported !== null) return reject(raw, unsupported.code, unsupported.message)
      try {
        scheduler.submit(decoded.value)
      } catch (err) {
        reject(raw, isTrinityError(err) ? err.code : 'TRINITY_ERR_INTERNAL', err instanceof Error ? err.message : String(err))
      }
    },
    instanceReport: (t, payload, raw) => {
      const decoded = decode(Report, payload)
      if (!decoded.ok) return reject(raw, refusalCode(decoded), decoded.reason)
      const problem = reportProblem(decoded.value)
      if (problem !== null) return reject(raw, 'TRINITY_ERR_BAD_PAYLOAD', problem)
      const outcome = scheduler.report(t.instanceId, decoded.value)
      if (outcome === 'unknown-task') reject(raw, 'TRINITY_ERR_TASK_NOT_FOUND', `taskId: no task ${decoded.value.taskId}`)
      else if (outcome === 'waiting') reject(raw, 'TRINITY_ERR_TASK_CONFLICT', `state: task ${decoded.value.taskId} is needs_input; a ${decoded.value.state} report waits for the answer (POST /tasks/:id/respond)`)
      else if (outcome === 'stale') log.info({ instance: t.instanceId, taskId: decoded.value.taskId, state: decoded.value.state }, 'ignored a stale report')
    },
    // The answer to a task that asked (as POST /tasks/:id/respond): stored before the handler returns, so before the PUBACK.
    taskRespond: (t, payload, raw) => {
      const decoded = decode(TaskRespond, payload)
      if (!decoded.ok) return reject(raw, refusalCode(decoded), decoded.reason)
      try {
        scheduler.respond(t.taskId, decoded.value)
      } catch (err) {
        reject(raw, isTrinityError(err) ? err.code : 'TRINITY_ERR_INTERNAL', err instanceof Error ? err.message : String(err))
      }
    },
    instanceStatus: (t, payload, raw) => {
      if (payload.length === 0) return // a cleared retained status
      // Refused at join: the hub could never answer it (its inbox is a topic with the id in it).
      const unsupported = unsupportedId(ctx.brokerFlavor, 'instanceId', t.instanceId)
      if (unsupported !== null) return reject(raw, unsupported.code, unsupported.message)
      const decoded = decode(InstanceStatus, payload)
      if (!decoded.ok) return reject(raw, refusalCode(decoded), decoded.reason)
      const previousSession = registry.get(t.instanceId)?.session ?? null
      const outcome = registry.applyStatus(t.instanceId, decoded.value, Date.now())
      if (outcome === 'stale') return void log.info({ instance: t.instanceId, session: decoded.value.session }, 'ignored a stale status')
      if (outcome === 'full') {
        return reject(raw, 'TRINITY_ERR_REGISTRY_FULL', `instanceId: ${t.instanceId} is not in instances[] and ${registry.maxJoined} joined instances are known already (limits.maxJoinedInstances); health.forgetAfter expires silent ones, DELETE /instances/:id forgets one`)
      }
      if (outcome === 'unknown-session') {
        return reject(raw, 'TRINITY_ERR_SESSION_UNKNOWN', `session: ${decoded.value.session} is newer than ${t.instanceId}'s last birth (session ${String(previousSession)}); only a birth (online) starts a session, a ${decoded.value.state} status speaks for one`)
      }
      const current = registry.get(t.instanceId)
      if (current === undefined) return
      log.info({ instance: t.instanceId, state: decoded.value.state, session: decoded.value.session, outcome }, 'instance status')
      if (decoded.value.state === 'online') ctx.rememberBirth(t.instanceId)
      ctx.publishHealth(t.instanceId, { state: current.state, responseMs: null, checkedAt: Date.now(), ...(current.reason === null ? {} : { reason: current.reason }) })
      if (outcome === 'offline') scheduler.instanceLost(t.instanceId, 'went offline')
      else if (previousSession !== null && decoded.value.session !== previousSession && decoded.value.state === 'online') {
        // A new session means the process restarted: work it had started is gone.
        scheduler.instanceLost(t.instanceId, 'restarted', 'running')
      }
      scheduler.dispatch()
    },
    instanceHeartbeat: (t, payload, raw) => {
      const decoded = decode(Heartbeat, payload)
      if (!decoded.ok) return reject(raw, refusalCode(decoded), decoded.reason)
      ctx.health.heartbeat(t.instanceId, decoded.value.nonce)
    },
    supervisorStatus: (_t, payload, raw) => {
      if (payload.length === 0) return
      const decoded = decode(SupervisorStatus, payload)
      if (!decoded.ok) return reject(raw, refusalCode(decoded), decoded.reason)
      ctx.supervisorStatus(decoded.value)
      for (const child of decoded.value.children) {
        if (child.kind !== 'instance' || child.instance === undefined) continue
        const instance = registry.get(child.instance)
        if (instance !== undefined) instance.process = { state: child.state, pid: child.pid, restarts: child.restarts, reason: child.reason }
      }
    },
    message: (t, payload, raw) => {
      const decoded = decode(Message, payload)
      if (!decoded.ok) return reject(raw, refusalCode(decoded), decoded.reason)
      if (decoded.value.from !== t.from || decoded.value.to !== t.to) return reject(raw, 'TRINITY_ERR_BAD_PAYLOAD', `from/to: payload says ${decoded.value.from} → ${decoded.value.to}, topic says ${t.from} → ${t.to}`)
      if (ctx.isOwnEcho(decoded.value.id)) return
      const unknown = ctx.unknownRecipient(decoded.value.to)
      if (unknown !== null) return reject(raw, 'TRINITY_ERR_RECIPIENT_UNKNOWN', `to: ${unknown}`)
      ctx.acceptMessage(decoded.value)
    },
  }
}

/**
 * One message from the bus to its handler: topics the coordinator does not
 * subscribe to are ignored, oversized client data is refused before it is
 * parsed, and a handler that throws is reported, never fatal.
 */
export class BusDispatcher {
  private readonly handlers: BusHandlers

  constructor(private readonly ctx: BusContext, private readonly maxPayload: number) {
    this.handlers = busHandlers(ctx)
  }

  /**
   * A delivered topic the contract could not parse: one of our filters
   * matched it (`+` takes any level), so a `+` level is not an id. Says which.
   */
  refuseTopic(topic: string): void {
    const levels = topic.split('/')
    for (const subscription of Object.values(SUBSCRIPTIONS)) {
      const filter = subscription.filter(this.ctx.topics)
      if (!topicMatches(filter, topic)) continue
      const bad = filter.split('/').flatMap((level, i) => (level === '+' && !isTopicId(levels[i] ?? '') ? [levels[i] ?? ''] : []))
      if (bad.length === 0) continue
      const shown = bad.map((id) => JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id)).join(', ')
      return this.ctx.reject(topic, 'TRINITY_ERR_BAD_TOPIC', `topic: ${shown} in ${filter} is not an id: expected ${ID_PATTERN} (letters, digits, ., _, -, at most 64)`)
    }
  }

  dispatch(parsed: ParsedTopic, payload: Buffer, topic: string): void {
    const kind = parsed.kind
    if (!isSubscribed(kind)) return
    if (payload.length > this.maxPayload && SUBSCRIPTIONS[kind].sizeChecked) {
      return this.ctx.reject(topic, 'TRINITY_ERR_PAYLOAD_TOO_LARGE', `payload too large: ${payload.length} bytes, over limits.maxPayload, ${formatSize(this.maxPayload)}`)
    }
    // The table is keyed on the kind, so this handler takes this topic's shape.
    const handler = this.handlers[kind] as (t: ParsedTopic, p: Buffer, raw: string) => void
    try {
      handler(parsed, payload, topic)
    } catch (err) {
      // A bug must not take the hub down with it; say what happened and go on.
      this.ctx.log.error({ err, topic }, 'handler failed')
      this.ctx.reject(topic, 'TRINITY_ERR_INTERNAL', `internal error: ${(err as Error).message}`)
    }
  }
}
