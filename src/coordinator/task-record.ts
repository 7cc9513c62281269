/**
 * The task record and its legs, as pure functions: creating a record from a
 * submission, and deriving the task's state and result from its legs.
 *
 * A task has one leg per target for the `all` strategy (fan-out) and one leg
 * otherwise. What can happen to a leg is in leg-lifecycle.ts; the task's
 * state follows from its legs.
 */
import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import type { Priority, TaskState } from '../contract/constants.js'
import type { TaskRecord, TaskSubmit } from '../contract/payloads/task.js'
import { isLegFinished, newLeg } from './leg-lifecycle.js'
import type { Route } from '../config/schema.js'

export function newTaskRecord(submit: TaskSubmit, route: Route, defaults: { priority: Priority; maxAttempts: number }, now: number): TaskRecord {
  const legTargets = route.strategy === 'all' ? route.targets.map((t) => [t]) : [[...route.targets]]
  return {
    id: submit.id ?? randomUUID(),
    type: submit.type,
    content: submit.content,
    priority: submit.priority ?? defaults.priority,
    state: 'queued',
    strategy: route.strategy,
    createdAt: now,
    updatedAt: now,
    maxAttempts: defaults.maxAttempts,
    assignments: legTargets.map((targets) => newLeg(targets, now)),
  }
}

/** Same submission again (an idempotent retry by the client)? */
export function sameSubmission(task: TaskRecord, submit: TaskSubmit): boolean {
  return task.type === submit.type && isDeepStrictEqual(task.content, submit.content)
}

/** The task's state and result, derived from its legs. */
export function deriveState(task: TaskRecord): void {
  if (task.state === 'cancelled') return
  const legs = task.assignments
  const finished = legs.every(isLegFinished)
  let state: TaskState
  if (finished) {
    if (legs.some((l) => l.state === 'dead')) state = 'dead'
    else if (legs.some((l) => l.state === 'failed')) state = 'failed'
    else if (legs.some((l) => l.state === 'cancelled')) state = 'cancelled'
    else state = 'completed'
  } else if (legs.some((l) => l.state === 'needs_input')) state = 'needs_input' // a person is asked: what to show first
  else if (legs.some((l) => l.state === 'running')) state = 'running'
  else if (legs.some((l) => l.state === 'assigned')) state = 'assigned'
  else state = 'queued'
  task.state = state
  if (state === 'completed') {
    const [only] = legs
    task.result = legs.length === 1 && only !== undefined ? only.output : legs.map((l) => ({ instance: l.instance, output: l.output }))
  }
  if (state === 'failed' || state === 'dead') {
    task.error = legs
      .filter((l) => l.error !== undefined)
      .map((l) => `${l.instance ?? l.targets.join('|')}: ${l.error}`)
      .join('; ')
  }
}

export function legKey(taskId: string, leg: number): string {
  return `${taskId}#${leg}`
}
