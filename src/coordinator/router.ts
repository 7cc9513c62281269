/**
 * Routing: which route a task type takes, and which instance takes a leg.
 * Candidates are available instances (online or degraded, not full); among
 * them `least-loaded` picks the fewest in flight, then the fastest, and
 * `round-robin` rotates. A retry prefers an instance that has not yet tried.
 */
import type { Route } from '../config/schema.js'
import { TrinityError } from '../errors.js'
import type { Instance, Registry } from './registry.js'

export class Router {
  private readonly turns = new Map<string, number>()

  constructor(
    private readonly registry: Registry,
    private readonly routes: Readonly<Record<string, Route>>,
    private readonly fallback: Route | null,
  ) {}

  routeFor(type: string): Route {
    const route = this.routes[type] ?? this.fallback
    if (route === null) {
      throw new TrinityError(
        'TRINITY_ERR_TASK_TYPE_UNKNOWN',
        `"${type}" (known: ${Object.keys(this.routes).join(', ')}; set tasks.fallback to route unknown types)`,
        { field: 'type' },
      )
    }
    return route
  }

  /** Every instance a leg could ever go to, available or not. */
  eligible(targets: readonly string[]): Instance[] {
    const seen = new Map<string, Instance>()
    for (const target of targets) for (const instance of this.registry.matching(target)) seen.set(instance.id, instance)
    return [...seen.values()]
  }

  pick(targets: readonly string[], strategy: Route['strategy'], tried: readonly string[]): Instance | undefined {
    const available = this.eligible(targets).filter((i) => i.available)
    if (available.length === 0) return undefined
    const fresh = available.filter((i) => !tried.includes(i.id))
    const pool = fresh.length > 0 ? fresh : available
    if (strategy === 'round-robin') {
      pool.sort((a, b) => (a.id < b.id ? -1 : 1))
      const key = targets.join(',')
      const turn = this.turns.get(key) ?? 0
      this.turns.set(key, turn + 1)
      return pool[turn % pool.length]
    }
    let best: Instance | undefined
    for (const candidate of pool) {
      if (best === undefined || compareLoad(candidate, best) < 0) best = candidate
    }
    return best
  }
}

function compareLoad(a: Instance, b: Instance): number {
  if (a.state !== b.state) return a.state === 'online' ? -1 : b.state === 'online' ? 1 : 0
  if (a.inFlight.size !== b.inFlight.size) return a.inFlight.size - b.inFlight.size
  return (a.averageResponseMs ?? 0) - (b.averageResponseMs ?? 0)
}
