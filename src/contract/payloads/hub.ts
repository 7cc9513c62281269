/** What the hub says about itself: `trinity/hub/stats` and `trinity/hub/errors`. */
import Type, { type Static } from 'typebox'
import { ERRORS, type ErrorCode } from '../../errors.js'
import { Count } from './common.js'
import { TaskCounts } from './task.js'

/** `trinity/hub/errors`: why an input was rejected, as a stable code (src/errors.ts, docs/errors.md) and in words. */
export const HubError = Type.Object({
  topic: Type.String(),
  code: Type.Enum(Object.keys(ERRORS) as ErrorCode[], { description: 'a code of the error registry (docs/errors.md)' }),
  reason: Type.String(),
  at: Type.Integer(),
  clientId: Type.Optional(Type.String()),
})
export type HubError = Static<typeof HubError>


/** `trinity/hub/stats`, retained (and the body of GET /, with the hub's name and version). */
export const HubStats = Type.Object({
  /** `timeout`: missed a check, not yet offline (counted apart, not as offline). */
  instances: Type.Object({ total: Count, online: Count, degraded: Count, timeout: Count, offline: Count }),
  healthChecks: Count,
  messages: Count,
  tasks: TaskCounts,
  rejected: Count,
  at: Type.Integer(),
})
export type HubStats = Static<typeof HubStats>
