/**
 * Which contract schema each bus payload the page renders is decoded with.
 * A payload that does not match is dropped with the reason (`field: what was
 * expected`) in the activity log, never half-rendered: the page trusts the
 * types below only because every value passed this check first.
 *
 * Task events: the hub's summaries (`TaskEvent`), or an older hub's full
 * records (`TaskRecord`).
 */
import Type, { type Static, type TSchema } from 'typebox'
import { BridgeStatus, ComputerMessage, ComputerStatus } from '../../src/contract/payloads/bridge.js'
import { HubError, HubStats } from '../../src/contract/payloads/hub.js'
import { Health, InstanceStatus } from '../../src/contract/payloads/instance.js'
import { Message } from '../../src/contract/payloads/message.js'
import { SupervisorStatus } from '../../src/contract/payloads/supervisor.js'
import { TaskEvent, TaskRecord } from '../../src/contract/payloads/task.js'
import type { TopicKind } from '../../src/contract/topics.js'

export const TaskWire = Type.Union([TaskEvent, TaskRecord])
export type TaskWire = Static<typeof TaskWire>

export const SHOWN = {
  instanceStatus: InstanceStatus,
  health: Health,
  taskEvent: TaskWire,
  message: Message,
  hubStats: HubStats,
  hubErrors: HubError,
  supervisorStatus: SupervisorStatus,
  bridgeStatus: BridgeStatus,
  computerStatus: ComputerStatus,
  computerMessage: ComputerMessage,
} as const satisfies Partial<Record<TopicKind, TSchema>>

/** The topic kinds the page subscribes to and renders. */
export type ShownKind = keyof typeof SHOWN
export type PayloadOf<K extends ShownKind> = Static<(typeof SHOWN)[K]>

export function isShown(kind: TopicKind): kind is ShownKind {
  return kind in SHOWN
}
