/** What a report's schema (task.ts, `Report`) cannot say: which fields go with which state. */
import type { Report } from './task.js'

/** What is wrong with a decoded report that its schema cannot say (`field: reason`), or null. */
export function reportProblem(report: Report): string | null {
  if (report.state === 'needs_input') return report.question === undefined ? 'question: required with state needs_input' : null
  if (report.question !== undefined) return `question: only with state needs_input, not ${report.state}`
  if (report.choices !== undefined) return `choices: only with state needs_input, not ${report.state}`
  return null
}
