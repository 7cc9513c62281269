/**
 * The contract's constants, with no dependencies, so the dashboard's browser
 * code imports them at run time (as it does preview.ts and topics.ts) instead
 * of keeping copies. The schemas in payloads/ are built from these (import
 * the constants from here); nothing here may import TypeBox.
 */

/** An id that is safe as one MQTT topic level: no `/`, no wildcards, no `$`. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'

/** A task type: snake_case, what routes and capabilities name. */
export const TASK_TYPE_PATTERN = '^[a-z][a-z0-9_]{0,63}$'

export const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const
export type Priority = (typeof PRIORITIES)[number]
/** What a submission gets when it names none. */
export const DEFAULT_PRIORITY: Priority = 'normal'
/** Higher runs first. */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { low: 0, normal: 1, high: 2, critical: 3 }

export const TASK_STATES = ['queued', 'assigned', 'running', 'needs_input', 'completed', 'failed', 'dead', 'cancelled'] as const
export type TaskState = (typeof TASK_STATES)[number]
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['completed', 'failed', 'dead', 'cancelled'])
/** Not yet finished: waiting for, or held by, an instance (`needs_input`: held, and waiting for a person's answer). */
export const ACTIVE_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['queued', 'assigned', 'running', 'needs_input'])

/** How a route spreads a task over its targets. */
export const STRATEGIES = ['all', 'least-loaded', 'round-robin'] as const
export type Strategy = (typeof STRATEGIES)[number]

export const HEALTH_STATES = ['online', 'offline', 'degraded', 'timeout', 'error'] as const
export type HealthState = (typeof HEALTH_STATES)[number]

/** What an HTTP token allows (README, Security): read = every GET; submit = read + submissions; admin = everything. */
export const SCOPES = ['read', 'submit', 'admin'] as const
export type Scope = (typeof SCOPES)[number]
/** Each scope with the ones it includes. */
export const SCOPE_RANK: Readonly<Record<Scope, number>> = { read: 0, submit: 1, admin: 2 }
