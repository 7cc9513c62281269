/**
 * Draws at most once per animation frame however many bus events arrive: a
 * change only asks for a frame, and the frame draws what changed since the
 * last one. This is what keeps the page responsive at 1,000 events a second.
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
