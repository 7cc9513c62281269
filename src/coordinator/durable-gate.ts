/**
 * Holds back what says "stored" until the store vouches for it (issue #13).
 *
 * An acknowledgement (PUBACK), a task event, an inbox frame, an HTTP 2xx:
 * each tells someone that a change is kept. With the SQLite store every write
 * is on disk when its call returns (`durable()` is undefined), and `run`
 * calls at once: the gate costs one call. A replicated store confirms later;
 * then each effect waits for every write made before it, and effects leave in
 * the order they were asked for (an event never overtakes the PUBACK of the
 * report it follows from, nor a later event the earlier one).
 *
 * If the store cannot vouch (it rejects: fenced by a newer leader, or given
 * up), nothing held is released, ever: the client was not told, so it sends
 * again to whichever hub leads now. `onFailure` hears the reason once.
 */
import type { Logger } from '../log.js'
import type { TaskStore } from './task-store.js'

export class DurableGate {
  /** The last held effect's turn: the next one goes after it. undefined when nothing is held. */
  private tail: Promise<void> | undefined
  private failed: Error | undefined

  constructor(
    private readonly store: Pick<TaskStore, 'durable'>,
    private readonly log: Pick<Logger, 'error'>,
    private readonly onFailure: (reason: Error) => void,
  ) {}

  /**
   * Runs `effect` once every write made so far is durable: now, when it
   * already is and nothing is held. If the store cannot vouch, `effect` never
   * runs and `refused` (when given) hears why.
   */
  run(effect: () => void, refused?: (reason: Error) => void): void {
    if (this.failed !== undefined) { refused?.(this.failed); return }
    const durable = this.store.durable()
    if (durable === undefined && this.tail === undefined) return effect()
    const before = this.tail === undefined ? durable : durable === undefined ? this.tail : Promise.all([this.tail, durable])
    const turn: Promise<void> = (before as Promise<unknown>).then(
      () => {
        if (this.failed !== undefined) { refused?.(this.failed); return }
        // Its caller has long returned: what it would have thrown is said here.
        try { effect() } catch (err) { this.log.error({ err }, 'an effect held for the store failed') }
      },
      (reason: unknown) => { this.fail(reason); refused?.(this.failed as Error) },
    ).finally(() => { if (this.tail === turn) this.tail = undefined })
    this.tail = turn
  }

  /** undefined when nothing is held and every write is durable; else a promise for that moment, rejected when the store cannot vouch. */
  settled(): Promise<void> | undefined {
    if (this.failed === undefined && this.tail === undefined && this.store.durable() === undefined) return undefined
    return new Promise<void>((resolve, reject) => this.run(resolve, reject))
  }

  private fail(reason: unknown): void {
    if (this.failed !== undefined) return
    this.failed = reason instanceof Error ? reason : new Error(String(reason))
    this.onFailure(this.failed)
  }
}
