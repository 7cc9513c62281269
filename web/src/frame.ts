/**
 * The pace of drawing. At most once per animation frame however many bus
 * events arrive: a change only asks for a frame, and the frame draws what
 * changed since the last one. Heavy sections can be held to a slower pace
 * still. This is what keeps the page responsive at 1,000 events a second.
 */
export function frameScheduler(draw: () => void): () => void {
  let pending = false
  return () => {
    if (pending) return
    pending = true
    requestAnimationFrame(() => {
      pending = false
      draw()
    })
  }
}

/**
 * Holds chosen sections to at most one draw per `intervalMs`: `filter` takes
 * them out of a frame's dirty set when they were drawn too recently, and
 * `remark`s them once their interval has passed.
 */
export class SectionThrottle<S extends string> {
  private drawnAt = -Infinity
  private readonly deferred = new Set<S>()
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly slow: ReadonlySet<S>, private readonly intervalMs: number, private readonly remark: (section: S) => void) {}

  filter(dirty: Set<S>): Set<S> {
    const now = performance.now()
    const due = now - this.drawnAt >= this.intervalMs
    for (const section of dirty) {
      if (!this.slow.has(section)) continue
      if (due) {
        this.drawnAt = now
      } else {
        dirty.delete(section)
        this.deferred.add(section)
      }
    }
    if (this.deferred.size > 0 && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        const again = [...this.deferred]
        this.deferred.clear()
        for (const section of again) this.remark(section)
      }, Math.max(0, this.intervalMs - (now - this.drawnAt)))
    }
    return dirty
  }
}
