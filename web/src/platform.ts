/**
 * What the page draws of the platform pieces' retained status (the
 * supervisor, the git bridge, computers), from payloads already decoded with
 * the contract's schemas (payloads.ts): no field is guessed at here. A value
 * the schema leaves optional or nullable is null, and drawn as "—".
 */

import type { BridgeStatus, ComputerStatus } from '../../src/contract/payloads/bridge.js'
import type { SupervisedChild, SupervisorStatus } from '../../src/contract/payloads/supervisor.js'

export interface ChildView {
  name: string
  kind: SupervisedChild['kind']
  instance: string | null
  pid: number | null
  state: SupervisedChild['state']
  restarts: number
  lastExit: string | null
  nextRestartAt: number | null
  reason: string | null
}

export interface SupervisorView {
  state: SupervisorStatus['state']
  pid: number
  startedAt: number
  children: ChildView[]
  at: number
}

export type BridgeView = Pick<BridgeStatus, 'computer' | 'state' | 'lastRoundAt' | 'lastSuccessAt' | 'lastError' | 'queued' | 'nextRoundAt' | 'at'>

export type ComputerView = Pick<ComputerStatus, 'computer' | 'state' | 'updated' | 'lastSync' | 'instances' | 'queueDepth'>

/** How a child last ended: its signal, else its exit code. */
function lastExit(exit: SupervisedChild['lastExit']): string | null {
  if (exit === null) return null
  return exit.signal ?? (exit.code === null ? null : `code ${String(exit.code)}`)
}

export function supervisorView(status: SupervisorStatus): SupervisorView {
  return {
    state: status.state,
    pid: status.pid,
    startedAt: status.startedAt,
    at: status.at,
    children: status.children.map((c) => ({
      name: c.name,
      kind: c.kind,
      instance: c.instance ?? null,
      pid: c.pid,
      state: c.state,
      restarts: c.restarts,
      lastExit: lastExit(c.lastExit),
      nextRestartAt: c.nextRestartAt,
      reason: c.reason,
    })),
  }
}

export function bridgeView(status: BridgeStatus): BridgeView {
  const { computer, state, lastRoundAt, lastSuccessAt, lastError, queued, nextRoundAt, at } = status
  return { computer, state, lastRoundAt, lastSuccessAt, lastError, queued, nextRoundAt, at }
}

export function computerView(status: ComputerStatus): ComputerView {
  const { computer, state, updated, lastSync, instances, queueDepth } = status
  return { computer, state, updated, lastSync, instances, queueDepth }
}
