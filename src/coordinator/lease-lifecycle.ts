/**
 * What can happen to a hub's leader lease (leader-lease.ts), as pure
 * functions over a state, an event and the caller's monotonic `at`
 * (performance.now()): nothing here reads a clock or does I/O.
 *
 *   standby ──acquired──▶ held ──renewed──▶ held
 *                          │ └──unanswered (before the deadline): retry soon──▶ held
 *                          └──refused / deadline passed / released──▶ lost (final)
 *
 * The lease is a KV key in a bucket whose max_age is the TTL (2.9 has no
 * per-key TTL): the server drops it TTL after the last write it stored. A
 * write's answer comes after the server stored it, which is after we sent
 * it, so `sentAt + ttl` is never later than the server's expiry: the local
 * deadline is that, less a margin (for clock rates, and the time between
 * reading the clock and the write leaving). Only then may another hub
 * `create` the key, so the old holder has stopped writing (the store asks
 * `refusal` before each write) before the new one starts.
 *
 * A renewal is due a third of the TTL after the last one was sent; one left
 * unanswered (timeout, reconnect) is retried soon after, until the deadline.
 * An answer that arrives after the deadline does not bring the lease back:
 * the hub may already have refused writes for it, and another hub may hold
 * the key by then.
 */

export interface LeaseTiming {
  readonly ttlMs: number
  /** Taken off `sentAt + ttl` for the local deadline. */
  readonly marginMs: number
  /** After an unanswered renewal, the next try. */
  readonly retryMs: number
}

export function leaseTiming(ttlMs: number): LeaseTiming {
  return { ttlMs, marginMs: Math.min(1_000, Math.max(50, Math.round(ttlMs / 10))), retryMs: Math.max(50, Math.round(ttlMs / 20)) }
}

export type LeaseState =
  | { readonly kind: 'standby' }
  | {
      readonly kind: 'held'
      /** The key's revision when this hub acquired it: the fencing epoch stamped on its writes. */
      readonly epoch: number
      /** The key's revision now: what the next renewal's CAS expects. */
      readonly revision: number
      /** Past this (monotonic ms), the lease is lost unless a renewal was answered before. */
      readonly deadline: number
      readonly renewAt: number
    }
  | { readonly kind: 'lost'; readonly epoch: number; readonly reason: string }

export type LeaseEvent =
  /** The key was created for this hub: `sentAt` is when the create was sent, `at` when its answer came. */
  | { readonly kind: 'acquired'; readonly revision: number; readonly sentAt: number; readonly at: number }
  | { readonly kind: 'renewed'; readonly revision: number; readonly sentAt: number; readonly at: number }
  /** The renewal's CAS failed: another hub wrote the key, or it expired (revision 0 now). */
  | { readonly kind: 'refused'; readonly at: number; readonly why: string }
  /** The renewal got no answer (timeout, no quorum, a reconnect). */
  | { readonly kind: 'unanswered'; readonly at: number }
  | { readonly kind: 'tick'; readonly at: number }
  /** This hub stepped down (or is closing): final. */
  | { readonly kind: 'released'; readonly at: number }

export const STANDBY: LeaseState = { kind: 'standby' }

export function nextLease(state: LeaseState, event: LeaseEvent, timing: LeaseTiming): LeaseState {
  if (state.kind === 'lost') return state
  if (state.kind === 'standby') {
    if (event.kind !== 'acquired') return state
    const held = heldFrom(event.revision, event.revision, event.sentAt, timing)
    return event.at >= held.deadline ? lost(held.epoch, 'the create of the lease was answered after its deadline') : held
  }
  switch (event.kind) {
    case 'acquired':
      return state
    case 'renewed':
      if (event.at >= state.deadline) return lost(state.epoch, 'the renewal was answered after the lease\'s deadline')
      return heldFrom(state.epoch, event.revision, event.sentAt, timing)
    case 'refused':
      return lost(state.epoch, `the renewal was refused: ${event.why}`)
    case 'unanswered':
      if (event.at >= state.deadline) return lost(state.epoch, 'no renewal was answered before the lease\'s deadline')
      return { ...state, renewAt: Math.min(event.at + timing.retryMs, state.deadline) }
    case 'tick':
      return event.at >= state.deadline ? lost(state.epoch, 'no renewal was answered before the lease\'s deadline') : state
    case 'released':
      return lost(state.epoch, 'this hub released the lease')
  }
}

/** Why a hub in this state may not write at `at`; undefined when it may. */
export function refusalAt(state: LeaseState, at: number): string | undefined {
  switch (state.kind) {
    case 'standby':
      return 'this hub does not hold the leader lease'
    case 'held':
      return at >= state.deadline ? `the leader lease (epoch ${state.epoch}) ran out without a renewal` : undefined
    case 'lost':
      return `the leader lease (epoch ${state.epoch}) was lost: ${state.reason}`
  }
}

function heldFrom(epoch: number, revision: number, sentAt: number, timing: LeaseTiming): LeaseState & { kind: 'held' } {
  return { kind: 'held', epoch, revision, deadline: sentAt + timing.ttlMs - timing.marginMs, renewAt: sentAt + timing.ttlMs / 3 }
}

function lost(epoch: number, reason: string): LeaseState {
  return { kind: 'lost', epoch, reason }
}
