/**
 * When to restart a child that exited, and when to stop trying.
 *
 * Exponential backoff with jitter (base × factor^n, capped, then scaled into
 * [1 − jitter, 1] of itself so a fleet that crashed together does not restart
 * in lockstep), reset once a run lasts `resetAfterMs`. More than `restarts`
 * exits inside `windowMs` is a crash loop: no more automatic restarts until
 * someone asks for one. Pure: the caller passes the clock and the dice.
 */
export interface RestartPolicy {
  readonly baseMs: number
  readonly factor: number
  readonly maxMs: number
  readonly jitter: number
  readonly resetAfterMs: number
}

export interface CrashLoopPolicy {
  readonly restarts: number
  readonly windowMs: number
}

export type RestartDecision =
  | { readonly action: 'restart'; readonly delayMs: number; readonly attempt: number }
  | { readonly action: 'give-up'; readonly exits: number; readonly windowMs: number }

export class RestartTracker {
  /** Consecutive short runs since the last stable one. */
  private attempt = 0
  private exits: number[] = []

  constructor(
    private readonly policy: RestartPolicy,
    private readonly loop: CrashLoopPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** A child exited on its own after running `uptimeMs`. */
  onExit(now: number, uptimeMs: number): RestartDecision {
    if (uptimeMs >= this.policy.resetAfterMs) this.attempt = 0
    this.exits = this.exits.filter((t) => now - t < this.loop.windowMs)
    this.exits.push(now)
    if (this.exits.length > this.loop.restarts) {
      return { action: 'give-up', exits: this.exits.length, windowMs: this.loop.windowMs }
    }
    const { baseMs, factor, maxMs, jitter } = this.policy
    const capped = Math.min(maxMs, baseMs * factor ** this.attempt)
    const delayMs = Math.round(capped * (1 - jitter * this.random()))
    this.attempt++
    return { action: 'restart', delayMs, attempt: this.attempt }
  }

  /** A manual restart: forget the history and start afresh. */
  reset(): void {
    this.attempt = 0
    this.exits = []
  }
}
