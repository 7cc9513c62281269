/**
 * The supervisor's payloads (`trinity start`): its retained status with every
 * child it runs (`trinity/supervisor/status`) and the commands it takes
 * (`trinity/supervisor/command`).
 */
import Type, { type Static } from 'typebox'
import { Id } from './common.js'

export const CHILD_STATES = ['starting', 'running', 'backoff', 'error', 'stopping', 'stopped'] as const
export type ChildState = (typeof CHILD_STATES)[number]

/** One process the supervisor runs. */
export const SupervisedChild = Type.Object({
  name: Type.String(),
  kind: Type.Enum(['hub', 'bridge', 'instance']),
  instance: Type.Optional(Id),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  state: Type.Enum([...CHILD_STATES]),
  restarts: Type.Integer({ minimum: 0 }),
  startedAt: Type.Union([Type.Number(), Type.Null()]),
  readyAt: Type.Union([Type.Number(), Type.Null()]),
  lastExit: Type.Union([Type.Object({ code: Type.Union([Type.Integer(), Type.Null()]), signal: Type.Union([Type.String(), Type.Null()]), at: Type.Number() }), Type.Null()]),
  nextRestartAt: Type.Union([Type.Number(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
})
export type SupervisedChild = Static<typeof SupervisedChild>

/** `trinity/supervisor/status`, retained. */
export const SupervisorStatus = Type.Object({
  state: Type.Enum(['starting', 'running', 'stopping', 'stopped']),
  pid: Type.Integer(),
  startedAt: Type.Number(),
  children: Type.Array(SupervisedChild),
  at: Type.Number(),
})
export type SupervisorStatus = Static<typeof SupervisorStatus>

/** `trinity/supervisor/command`: restart a child (clears a crash loop). */
export const SupervisorCommand = Type.Object(
  { action: Type.Literal('restart'), target: Type.String({ minLength: 1 }), requestedBy: Type.Optional(Type.String()) },
  { additionalProperties: false },
)
export type SupervisorCommand = Static<typeof SupervisorCommand>
