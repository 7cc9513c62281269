/**
 * Tolerant readers for the retained status of the platform pieces (the
 * supervisor, the git bridge, computers). Those are built in parallel with
 * the dashboard, so the page reads what it knows and ignores the rest: an
 * unknown field is skipped, a missing or mistyped one becomes null and is
 * shown as "—". Nothing here throws on a payload.
 */

import type { BridgeStatus, ComputerStatus } from '../../src/contract/payloads/bridge.js'
import type { SupervisedChild, SupervisorStatus } from '../../src/contract/payloads/supervisor.js'

export type Json = Record<string, unknown>

/**
 * A payload read field by field: the field names are the contract's static
 * types (a renamed field is a compile error in the reader), the values stay
 * `unknown` until a guard has checked them. The page cannot load TypeBox, so
 * this, not the compiled schema, is how it re-validates.
 */
export type Loose<T> = { readonly [K in keyof T]?: unknown }

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null
}

export function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

export interface ChildView {
  name: string
  kind: string | null
  instance: string | null
  pid: number | null
  state: string | null
  restarts: number | null
  lastExit: string | null
  nextRestartAt: number | null
  reason: string | null
}

export interface SupervisorView {
  state: string | null
  pid: number | null
  startedAt: number | null
  children: ChildView[]
  at: number | null
}

export interface BridgeView {
  computer: string | null
  state: string | null
  lastRoundAt: number | null
  lastSuccessAt: number | null
  lastError: string | null
  queued: number | null
  nextRoundAt: number | null
  at: number | null
}

export interface ComputerView {
  computer: string
  state: string | null
  updated: number | string | null
  lastSync: number | string | null
  instances: { id: string; health: string | null }[]
  queueDepth: number | null
}

function lastExit(exit: unknown): string | null {
  if (!isRecord(exit)) return null
  const value = exit as Loose<NonNullable<SupervisedChild['lastExit']>>
  const how = str(value.signal) ?? (num(value.code) === null ? null : `code ${String(value.code)}`)
  return how
}

export function readSupervisor(payload: unknown): SupervisorView | null {
  if (!isRecord(payload)) return null
  const value = payload as Loose<SupervisorStatus>
  const children: unknown[] = Array.isArray(value.children) ? value.children : []
  return {
    state: str(value.state),
    pid: num(value.pid),
    startedAt: num(value.startedAt),
    at: num(value.at),
    children: children.filter(isRecord).map((child, i) => {
      const c = child as Loose<SupervisedChild>
      return {
        name: str(c.name) ?? `#${i + 1}`,
        kind: str(c.kind),
        instance: str(c.instance),
        pid: num(c.pid),
        state: str(c.state),
        restarts: num(c.restarts),
        lastExit: lastExit(c.lastExit),
        nextRestartAt: num(c.nextRestartAt),
        reason: str(c.reason),
      }
    }),
  }
}

export function readBridge(payload: unknown): BridgeView | null {
  if (!isRecord(payload)) return null
  const value = payload as Loose<BridgeStatus>
  return {
    computer: str(value.computer),
    state: str(value.state),
    lastRoundAt: num(value.lastRoundAt),
    lastSuccessAt: num(value.lastSuccessAt),
    lastError: str(value.lastError) ?? (isRecord(value.lastError) ? str(value.lastError['message']) : null),
    queued: num(value.queued),
    nextRoundAt: num(value.nextRoundAt),
    at: num(value.at),
  }
}

/** A time as the status files write it: epoch ms or an ISO string. */
function when(value: unknown): number | string | null {
  return num(value) ?? str(value)
}

export function readComputer(computer: string, payload: unknown): ComputerView | null {
  if (!isRecord(payload)) return null
  const value = payload as Loose<ComputerStatus>
  const instances: unknown[] = Array.isArray(value.instances) ? value.instances : []
  return {
    computer: str(value.computer) ?? computer,
    state: str(value.state),
    updated: when(value.updated),
    lastSync: when(value.lastSync),
    instances: instances.filter(isRecord).flatMap((entry) => {
      const i = entry as Loose<ComputerStatus['instances'][number]>
      const id = str(i.id)
      return id === null ? [] : [{ id, health: str(i.health) }]
    }),
    queueDepth: num(value.queueDepth),
  }
}
