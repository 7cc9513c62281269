/** The arguments of each `trinity mcp` tool (tools.ts), as TypeBox schemas. */
import Type, { type TSchema } from 'typebox'
import { ID_PATTERN, PRIORITIES } from '../contract/constants.js'
import { Id, TaskType } from '../contract/payloads/common.js'

/** trinity_submit waits at most this long when told to wait without a timeout. */
export const DEFAULT_WAIT_SECONDS = 300

const strict = { additionalProperties: false } as const

export const SCHEMAS = {
  trinity_inbox: Type.Object({}, strict),
  trinity_claim: Type.Object({ taskId: Id }, strict),
  trinity_report: Type.Object({
    taskId: Id,
    state: Type.Enum(['progress', 'completed', 'failed'], { description: 'progress renews the lease; completed and failed finish the task' }),
    output: Type.Optional(Type.Unknown({ description: 'any JSON value: the result (completed) or how far you are (progress)' })),
    error: Type.Optional(Type.String({ maxLength: 10_000, description: 'failed: what went wrong' })),
    retryable: Type.Optional(Type.Boolean({ description: 'failed: false when trying again cannot help; default true' })),
  }, strict),
  trinity_send: Type.Object({
    to: Type.String({ pattern: ID_PATTERN, description: 'an instance id, or `all`' }),
    message: Type.String({ maxLength: 1_000_000 }),
    replyTo: Type.Optional(Id),
  }, strict),
  trinity_submit: Type.Object({
    type: TaskType,
    content: Type.Unknown({ description: 'any JSON value; usually a string' }),
    priority: Type.Optional(Type.Enum([...PRIORITIES])),
    id: Type.Optional(Id),
    wait: Type.Optional(Type.Boolean({ description: 'wait for the task to finish and return its result' })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, description: `with wait: give up after this long (default ${DEFAULT_WAIT_SECONDS})` })),
  }, strict),
  trinity_status: Type.Object({}, strict),
  trinity_messages: Type.Object({
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    from: Type.Optional(Id),
    to: Type.Optional(Id),
  }, strict),
} as const satisfies Record<string, TSchema>

export type ToolName = keyof typeof SCHEMAS
