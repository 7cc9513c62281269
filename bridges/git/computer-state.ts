/**
 * This computer's state, learned from the bus (retained instance statuses,
 * health, hub stats), and the rules that name a computer's state:
 * - EMERGENCY: more than half the known instances are down (health offline,
 *   error or timeout: a crash loop shows as one of these);
 * - WORKING: tasks are assigned or running;
 * - IDLE: no task queued, assigned or running;
 * - ACTIVE: otherwise (tasks waiting, or no hub stats seen yet);
 * - SYNCING: published by the bridge itself during a round;
 * - OFFLINE: a peer whose status file was not updated for 3 intervals.
 */
import type { ComputerState, ComputerStatus } from '../../src/contract/payloads/bridge.js'
import type { HubStats } from '../../src/contract/payloads/hub.js'

const DOWN: ReadonlySet<string> = new Set(['offline', 'error', 'timeout'])

export class BusView {
  private readonly statusState = new Map<string, string>()
  private readonly healthState = new Map<string, string>()
  private stats: HubStats | undefined

  instanceStatus(id: string, payload: Buffer): void {
    if (payload.length === 0) { this.statusState.delete(id); return }
    const state = parseField(payload, 'state')
    if (state !== undefined) this.statusState.set(id, state)
  }

  health(id: string, payload: Buffer): void {
    if (payload.length === 0) { this.healthState.delete(id); return }
    const state = parseField(payload, 'state')
    if (state !== undefined) this.healthState.set(id, state)
  }

  hubStats(payload: Buffer): void {
    try {
      const parsed = JSON.parse(payload.toString('utf8')) as HubStats
      if (parsed !== null && typeof parsed === 'object' && typeof parsed.tasks === 'object') this.stats = parsed
    } catch { /* not ours to judge: the hub publishes this */ }
  }

  instances(): { id: string; health: string }[] {
    const ids = [...new Set([...this.statusState.keys(), ...this.healthState.keys()])].sort()
    return ids.map((id) => ({ id, health: this.healthState.get(id) ?? this.statusState.get(id) ?? 'unknown' }))
  }

  queueDepth(): number {
    return this.stats?.tasks.queued ?? 0
  }

  state(): ComputerState {
    const instances = this.instances()
    const down = instances.filter((i) => DOWN.has(i.health)).length
    if (instances.length > 0 && down * 2 > instances.length) return 'EMERGENCY'
    if (this.stats === undefined) return 'ACTIVE'
    const t = this.stats.tasks
    if ((t.assigned ?? 0) + (t.running ?? 0) > 0) return 'WORKING'
    if ((t.queued ?? 0) === 0) return 'IDLE'
    return 'ACTIVE'
  }
}

function parseField(payload: Buffer, field: string): string | undefined {
  try {
    const value = (JSON.parse(payload.toString('utf8')) as Record<string, unknown>)[field]
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

/** A peer's status as published on the bus: OFFLINE when its file is older than 3 intervals (or absent). */
export function peerView(computer: string, status: ComputerStatus | undefined, intervalMs: number, now: number): ComputerStatus {
  if (status === undefined) return { computer, state: 'OFFLINE', updated: null, lastSync: null, queueDepth: 0, instances: [], read: {} }
  const updated = status.updated === null ? NaN : Date.parse(status.updated)
  const stale = !Number.isFinite(updated) || now - updated > 3 * intervalMs
  return { ...status, computer, state: stale ? 'OFFLINE' : status.state }
}
