/**
 * The topic contract: the only module that spells a topic string.
 *
 * Every publisher and subscriber in Trinity (coordinator, agents, bridges,
 * dashboard, CLI, tests) builds and parses topic names here, so the names in
 * docs/topics.md and on the wire cannot drift apart. The prefix (`trinity` by
 * default) is configurable so that two hubs can share one external broker.
 */

import { ID_PATTERN } from './constants.js'

const idRegex = new RegExp(ID_PATTERN)

export function isTopicId(value: string): boolean {
  return idRegex.test(value)
}

/** Every concrete topic Trinity publishes or listens to, as a discriminated union. */
export type ParsedTopic =
  | { kind: 'taskSubmit' }
  | { kind: 'taskEvent'; taskId: string }
  | { kind: 'taskRespond'; taskId: string }
  | { kind: 'instanceInbox'; instanceId: string }
  | { kind: 'instanceReport'; instanceId: string }
  | { kind: 'instanceStatus'; instanceId: string }
  | { kind: 'instanceHeartbeat'; instanceId: string }
  | { kind: 'health'; instanceId: string }
  | { kind: 'message'; from: string; to: string }
  | { kind: 'hubStats' }
  | { kind: 'hubErrors' }
  | { kind: 'supervisorStatus' }
  | { kind: 'supervisorCommand' }
  | { kind: 'bridgeStatus' }
  | { kind: 'bridgeSync' }
  | { kind: 'computerStatus'; computer: string }
  | { kind: 'computerMessage'; computer: string }
  | { kind: 'computerSend'; computer: string }

export type TopicKind = ParsedTopic['kind']

export interface TopicContract {
  readonly prefix: string
  /** `{p}/#`: everything Trinity says. */
  readonly all: string
  readonly taskSubmit: string
  taskEvent(taskId: string): string
  /** `{p}/task/+/event` */
  readonly anyTaskEvent: string
  /** Publish here the answer to a task waiting for input (needs_input): `{answer}`, as POST /tasks/:id/respond. */
  taskRespond(taskId: string): string
  /** `{p}/task/+/respond` */
  readonly anyTaskRespond: string
  instanceInbox(instanceId: string): string
  instanceReport(instanceId: string): string
  readonly anyInstanceReport: string
  instanceStatus(instanceId: string): string
  readonly anyInstanceStatus: string
  instanceHeartbeat(instanceId: string): string
  readonly anyInstanceHeartbeat: string
  health(instanceId: string): string
  readonly anyHealth: string
  message(from: string, to: string): string
  /** `{p}/message/+/+` */
  readonly anyMessage: string
  /** Topics an instance may publish on when broker ACLs are on. */
  instanceNamespace(instanceId: string): string
  messageNamespace(from: string): string
  /** `{p}/message/+/{to}`: every message addressed to `to` (an instance's subscribe ACL). */
  messagesTo(to: string): string
  readonly hubStats: string
  readonly hubErrors: string
  /** Retained: the supervisor's view of every process it runs. */
  readonly supervisorStatus: string
  /** Requests to the supervisor (restart, start, stop a child). */
  readonly supervisorCommand: string
  /** Retained: the git bridge's state, last round and outgoing queue. */
  readonly bridgeStatus: string
  /** A request for a sync round now. */
  readonly bridgeSync: string
  /** Retained: computer n's status, as read from its status file (or this computer's own). */
  computerStatus(computer: string): string
  readonly anyComputerStatus: string
  /** A message that arrived from computer n through the git bridge. */
  computerMessage(fromComputer: string): string
  readonly anyComputerMessage: string
  /** Publish here to send a message to computer n through the git bridge. */
  computerSend(toComputer: string): string
  readonly anyComputerSend: string
  /** Where the broker sends a publish it refused, so it is acknowledged but reaches nobody. */
  readonly deniedSink: string
  parse(topic: string): ParsedTopic | undefined
}

const DEFAULT_PREFIX = 'trinity'

const contracts = new Map<string, TopicContract>()

/** The contract for one prefix. Cached: call it freely. */
export function topicsFor(prefix: string = DEFAULT_PREFIX): TopicContract {
  const cached = contracts.get(prefix)
  if (cached !== undefined) return cached
  const contract = buildContract(prefix)
  contracts.set(prefix, contract)
  return contract
}

function buildContract(p: string): TopicContract {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(p)) {
    throw new TypeError(`topic prefix ${JSON.stringify(p)} must be one or more plain topic levels`)
  }
  const depth = p.split('/').length
  const id = (value: string, what: string): string => {
    if (!idRegex.test(value)) throw new TypeError(`${what} ${JSON.stringify(value)} does not match ${ID_PATTERN}`)
    return value
  }
  return Object.freeze({
    prefix: p,
    all: `${p}/#`,
    taskSubmit: `${p}/task/submit`,
    taskEvent: (taskId: string) => `${p}/task/${id(taskId, 'task id')}/event`,
    anyTaskEvent: `${p}/task/+/event`,
    taskRespond: (taskId: string) => `${p}/task/${id(taskId, 'task id')}/respond`,
    anyTaskRespond: `${p}/task/+/respond`,
    instanceInbox: (i: string) => `${p}/instance/${id(i, 'instance id')}/inbox`,
    instanceReport: (i: string) => `${p}/instance/${id(i, 'instance id')}/report`,
    anyInstanceReport: `${p}/instance/+/report`,
    instanceStatus: (i: string) => `${p}/instance/${id(i, 'instance id')}/status`,
    anyInstanceStatus: `${p}/instance/+/status`,
    instanceHeartbeat: (i: string) => `${p}/instance/${id(i, 'instance id')}/heartbeat`,
    anyInstanceHeartbeat: `${p}/instance/+/heartbeat`,
    health: (i: string) => `${p}/health/${id(i, 'instance id')}`,
    anyHealth: `${p}/health/+`,
    message: (from: string, to: string) => `${p}/message/${id(from, 'sender')}/${id(to, 'recipient')}`,
    anyMessage: `${p}/message/+/+`,
    instanceNamespace: (i: string) => `${p}/instance/${id(i, 'instance id')}/#`,
    messageNamespace: (from: string) => `${p}/message/${id(from, 'sender')}/#`,
    messagesTo: (to: string) => `${p}/message/+/${id(to, 'recipient')}`,
    hubStats: `${p}/hub/stats`,
    hubErrors: `${p}/hub/errors`,
    supervisorStatus: `${p}/supervisor/status`,
    supervisorCommand: `${p}/supervisor/command`,
    bridgeStatus: `${p}/bridge/status`,
    bridgeSync: `${p}/bridge/sync`,
    computerStatus: (n: string) => `${p}/computer/${id(n, 'computer')}/status`,
    anyComputerStatus: `${p}/computer/+/status`,
    computerMessage: (n: string) => `${p}/computer/${id(n, 'computer')}/message`,
    anyComputerMessage: `${p}/computer/+/message`,
    computerSend: (n: string) => `${p}/computer/${id(n, 'computer')}/send`,
    anyComputerSend: `${p}/computer/+/send`,
    deniedSink: `$SYS/${p}/denied`,
    parse(topic: string): ParsedTopic | undefined {
      const levels = topic.split('/')
      if (levels.slice(0, depth).join('/') !== p) return undefined
      const [a, b, c] = levels.slice(depth)
      const rest = levels.length - depth
      const ok = (v: string | undefined): v is string => v !== undefined && idRegex.test(v)
      switch (a) {
        case 'task':
          if (rest === 2 && b === 'submit') return { kind: 'taskSubmit' }
          if (rest === 3 && c === 'event' && ok(b)) return { kind: 'taskEvent', taskId: b }
          if (rest === 3 && c === 'respond' && ok(b)) return { kind: 'taskRespond', taskId: b }
          return undefined
        case 'instance': {
          if (rest !== 3 || !ok(b)) return undefined
          switch (c) {
            case 'inbox': return { kind: 'instanceInbox', instanceId: b }
            case 'report': return { kind: 'instanceReport', instanceId: b }
            case 'status': return { kind: 'instanceStatus', instanceId: b }
            case 'heartbeat': return { kind: 'instanceHeartbeat', instanceId: b }
            default: return undefined
          }
        }
        case 'health':
          return rest === 2 && ok(b) ? { kind: 'health', instanceId: b } : undefined
        case 'message':
          return rest === 3 && ok(b) && ok(c) ? { kind: 'message', from: b, to: c } : undefined
        case 'hub':
          if (rest !== 2) return undefined
          if (b === 'stats') return { kind: 'hubStats' }
          if (b === 'errors') return { kind: 'hubErrors' }
          return undefined
        case 'supervisor':
          if (rest !== 2) return undefined
          if (b === 'status') return { kind: 'supervisorStatus' }
          if (b === 'command') return { kind: 'supervisorCommand' }
          return undefined
        case 'bridge':
          if (rest !== 2) return undefined
          if (b === 'status') return { kind: 'bridgeStatus' }
          if (b === 'sync') return { kind: 'bridgeSync' }
          return undefined
        case 'computer': {
          if (rest !== 3 || !ok(b)) return undefined
          switch (c) {
            case 'status': return { kind: 'computerStatus', computer: b }
            case 'message': return { kind: 'computerMessage', computer: b }
            case 'send': return { kind: 'computerSend', computer: b }
            default: return undefined
          }
        }
        default:
          return undefined
      }
    },
  })
}

/** MQTT topic filter matching ([MQTT-4.7]): `+` one level, `#` the rest. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}

/**
 * Whether every topic `filter` matches is also matched by `allowed` (both
 * filters, [MQTT-4.7]): a subscription is within an ACL entry. `+` in
 * `allowed` covers one level of anything, `+` included; `#` in `allowed`
 * covers the rest; `#` in `filter` only under a `#`.
 */
export function filterCovers(allowed: string, filter: string): boolean {
  const a = allowed.split('/')
  const f = filter.split('/')
  for (let i = 0; i < a.length; i++) {
    const level = a[i]
    if (level === '#') return true
    const wanted = f[i]
    if (wanted === undefined || wanted === '#') return false
    if (level !== '+' && level !== wanted) return false
  }
  return a.length === f.length
}
