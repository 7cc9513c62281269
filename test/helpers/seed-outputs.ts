/**
 * What the demo fleet answers for each seed task type, typed from the work
 * functions that compute it (src/fleet/work.ts), so the fleet tests' checks read
 * a task's output through its real shape rather than through `any`.
 */
import type { HubSummary } from '../../src/contract/http.js'
import type { analyzeData, buildProject, monitorSystem, patternAnalysis, trackUser, writePlan } from '../../src/fleet/work.js'

export interface SeedOutputs {
  analyze_data: ReturnType<typeof analyzeData>
  pattern_analysis: ReturnType<typeof patternAnalysis>
  track_user: ReturnType<typeof trackUser>
  // The fleet's monitor asks the hub it runs beside, which answers with its summary.
  monitor_system: Omit<Awaited<ReturnType<typeof monitorSystem>>, 'hub'> & { hub: HubSummary }
  build_project: Awaited<ReturnType<typeof buildProject>>
  bug_fix: ReturnType<typeof writePlan>
  deployment: ReturnType<typeof writePlan>
  general: ReturnType<typeof writePlan>
}

/** One seed task to submit: its type, its content, and a check of each output it gets. */
export type SeedCase = [type: keyof SeedOutputs, content: unknown, check: (output: unknown) => void]

/**
 * A seed case whose check sees the output as that type's work function returns it.
 * The output comes off the wire as JSON; the cast is the one place that trusts it,
 * and the check's own assertions are what verify it.
 */
export function seedCase<K extends keyof SeedOutputs>(type: K, content: unknown, check: (output: SeedOutputs[K]) => void): SeedCase {
  return [type, content, (output) => check(output as SeedOutputs[K])]
}
