/**
 * Routing: which route a task type takes, and which instance takes a leg.
 *
 * A route target names an instance id, or else every instance of that role or
 * that declares that capability. On top of the YAML, an instance that joined
 * by birth (no YAML entry) takes part in the routes of the task types its
 * birth declares as capabilities: its birth is the only thing that says what
 * it can do, while configured instances are placed by the routes their
 * operator wrote. For `least-loaded` and `round-robin` such an instance is one
 * more candidate; for `all` it gets a leg of its own in tasks submitted while
 * it is online and not draining (legs are fixed at submission, so it takes no
 * part in tasks submitted before it joined, and a leg of its own waits for it
 * like any `all` leg waits for its target). A type with no route goes to any online
 * instance that declares it (targets `[type]`), before `tasks.fallback`.
 *
 * Candidates are available instances (online or degraded, not full); among
 * them `least-loaded` picks the fewest in flight, then the fastest, and
 * `round-robin` rotates. A retry prefers an instance that has not yet tried.
 */
import { TERMINAL_TASK_STATES } from '../contract/constants.js'
import type { TaskRecord } from '../contract/payloads/task.js'
import type { InstanceConfig, Route } from '../config/schema.js'
import { TrinityError } from '../errors.js'
import type { Instance, Registry } from './registry.js'

export class Router {
  private readonly turns = new Map<string, number>()

  constructor(
    private readonly registry: Registry,
    private readonly routes: Readonly<Record<string, Route>>,
    private readonly fallback: Route | null,
  ) {}

  /** The route a task of this type takes now: for `all`, with a leg for each capable joined instance. */
  routeFor(type: string): Route {
    const configured = this.routes[type]
    if (configured !== undefined) {
      if (configured.strategy !== 'all') return configured
      const covered = new Set(this.eligible(configured.targets).map((i) => i.id))
      const extra = this.joinedCapable(type).filter((i) => !covered.has(i.id) && isUp(i) && !i.draining).map((i) => i.id)
      return extra.length === 0 ? configured : { targets: [...configured.targets, ...extra], strategy: 'all' }
    }
    if (this.registry.all().some((i) => i.capabilities.includes(type) && isUp(i))) return { targets: [type], strategy: 'least-loaded' }
    if (this.fallback !== null) return this.fallback
    throw new TrinityError(
      'TRINITY_ERR_TASK_TYPE_UNKNOWN',
      `"${type}" (known: ${Object.keys(this.routes).join(', ')}; no online instance declares it as a capability; set tasks.fallback to route unknown types)`,
      { field: 'type' },
    )
  }

  /** Every instance a leg could ever go to, available or not (the route's targets only). */
  eligible(targets: readonly string[]): Instance[] {
    const seen = new Map<string, Instance>()
    for (const target of targets) for (const instance of this.registry.matching(target)) seen.set(instance.id, instance)
    return [...seen.values()]
  }

  /** The candidates of a leg: its targets, plus (except for `all` legs) joined instances that declare the type. */
  candidates(type: string, targets: readonly string[], strategy: Route['strategy']): Instance[] {
    const listed = this.eligible(targets)
    if (strategy === 'all') return listed
    const ids = new Set(listed.map((i) => i.id))
    return [...listed, ...this.joinedCapable(type).filter((i) => !ids.has(i.id))]
  }

  pick(type: string, targets: readonly string[], strategy: Route['strategy'], tried: readonly string[]): Instance | undefined {
    const available = this.candidates(type, targets, strategy).filter((i) => i.available)
    if (available.length === 0) return undefined
    const fresh = available.filter((i) => !tried.includes(i.id))
    const pool = fresh.length > 0 ? fresh : available
    if (strategy === 'round-robin') {
      pool.sort((a, b) => (a.id < b.id ? -1 : 1))
      const key = `${type}:${targets.join(',')}`
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

  /**
   * Why a queued leg has no taker, in words for `submit --wait` and GET
   * /tasks/:id: e.g. `no online instance can take general (route: c1; c1 is offline)`.
   */
  explain(type: string, targets: readonly string[], strategy: Route['strategy']): string {
    const candidates = this.candidates(type, targets, strategy)
    if (candidates.some((i) => i.available)) return `queued for ${type} behind other work (route: ${targets.join(', ')})`
    const unmatched = targets.filter((t) => this.registry.matching(t).length === 0)
    const parts = [
      ...candidates.map((i) => `${i.id} is ${describe(i)}`),
      ...unmatched.map((t) => `${t} matches no instance`),
    ]
    return `no online instance can take ${type} (route: ${targets.join(', ')}; ${parts.join(', ')})`
  }

  /**
   * Why an unfinished task is not moving, leg by leg (GET /tasks/:id
   * `waiting`, `trinity submit --wait` on timeout); null when it is finished
   * or every leg is running.
   */
  waiting(task: TaskRecord, now: number): string | null {
    if (TERMINAL_TASK_STATES.has(task.state)) return null
    const reasons = task.assignments.flatMap((leg) => {
      if (leg.state === 'queued' && leg.notBefore > now) {
        return [`retry ${leg.attempts + 1} of ${task.maxAttempts} in ${Math.ceil((leg.notBefore - now) / 1000)} s${leg.error === undefined ? '' : ` (last: ${leg.error})`}`]
      }
      if (leg.state === 'queued') return [this.explain(task.type, leg.targets, task.strategy as Route['strategy'])]
      if (leg.state === 'assigned') return [`assigned to ${leg.instance ?? '?'}, which has not reported started`]
      if (leg.state === 'needs_input') return [`${leg.instance ?? '?'} waits for an answer (POST /tasks/${task.id}/respond): ${leg.input?.question ?? ''}`]
      return []
    })
    return reasons.length === 0 ? null : [...new Set(reasons)].join('; ')
  }

  private joinedCapable(type: string): Instance[] {
    return this.registry.all().filter((i) => i.source === 'joined' && i.capabilities.includes(type))
  }
}

/** Online or degraded (it may be full): what "a capable online instance" means here. */
function isUp(instance: Instance): boolean {
  return instance.state === 'online' || instance.state === 'degraded'
}

function describe(instance: Instance): string {
  if (instance.draining) return 'draining'
  if (!isUp(instance)) return instance.state
  if (instance.inFlight.size >= instance.concurrency) return `full (${instance.inFlight.size}/${instance.concurrency} in flight)`
  return instance.state
}

function compareLoad(a: Instance, b: Instance): number {
  if (a.state !== b.state) return a.state === 'online' ? -1 : b.state === 'online' ? 1 : 0
  if (a.inFlight.size !== b.inFlight.size) return a.inFlight.size - b.inFlight.size
  return (a.averageResponseMs ?? 0) - (b.averageResponseMs ?? 0)
}

/**
 * Routes whose targets match no configured instance (by id, role or
 * capability), for the warnings at start: such tasks wait until an instance
 * with that id, role or capability joins by birth. One entry per route.
 */
export function unmatchedRoutes(routes: Readonly<Record<string, Route>>, fallback: Route | null, instances: readonly InstanceConfig[]): { route: string; targets: string[] }[] {
  const matches = (target: string): boolean =>
    instances.some((i) => i.id === target || (i.role ?? i.id) === target || (i.capabilities ?? []).includes(target))
  const all: [string, Route][] = [...Object.entries(routes), ...(fallback === null ? [] : [['tasks.fallback', fallback] as [string, Route]])]
  return all.flatMap(([route, r]) => {
    const targets = r.targets.filter((t) => !matches(t))
    return targets.length === 0 ? [] : [{ route, targets }]
  })
}
