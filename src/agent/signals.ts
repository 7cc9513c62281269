/**
 * SIGTERM / SIGINT for the agents of one process: drain them all, then let
 * the signal do what it would have done without the SDK.
 *
 * A library must not decide that its host exits. So the SDK listens once per
 * signal for every agent it started, drains them together (one agent's exit
 * must not cut another's running task short), and then:
 * - if the host listens to that signal too, does nothing more: the host's own
 *   listener decides (the demo fleet drains and exits 0);
 * - if nobody else listens, raises the signal again with no listener left,
 *   so Node's default action ends the process as it would have at once
 *   (killed by SIGTERM, as the parent expects), only after the drain.
 */
interface Drainable {
  drain(): Promise<void>
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
type AgentSignal = (typeof SIGNALS)[number]

const agents = new Set<Drainable>()
let installed = false

function onSignal(signal: AgentSignal): void {
  for (const s of SIGNALS) process.off(s, listeners[s])
  installed = false
  const draining = [...agents]
  agents.clear()
  void Promise.allSettled(draining.map((a) => a.drain())).then(() => {
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

const listeners: Record<AgentSignal, () => void> = { SIGTERM: () => onSignal('SIGTERM'), SIGINT: () => onSignal('SIGINT') }

/** Drain this agent on SIGTERM / SIGINT (see the header for what happens next). */
export function drainOnSignals(agent: Drainable): void {
  agents.add(agent)
  if (installed) return
  installed = true
  for (const s of SIGNALS) process.on(s, listeners[s])
}

/** The agent drained on its own: nothing to do for it on a signal. */
export function forgetOnSignals(agent: Drainable): void {
  agents.delete(agent)
  if (agents.size > 0 || !installed) return
  installed = false
  for (const s of SIGNALS) process.off(s, listeners[s])
}
