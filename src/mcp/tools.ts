/**
 * The tools of `trinity mcp`: one TypeBox schema per tool (tool-schemas.ts:
 * the JSON Schema the host sees in tools/list, and what the arguments are
 * validated against with the contract's validate.ts), and one handler per
 * tool behind a small dispatch table. A failure is a tool result with
 * `isError: true` whose text starts with the registry code (docs/errors.md),
 * so the agent reads why and the host's session goes on; the code is also in
 * `structuredContent.error`.
 */
import type { Static } from 'typebox'
import { validate } from '../contract/payloads/validate.js'
import { TrinityError, isTrinityError } from '../errors.js'
import type { McpInstance } from './instance.js'
import { DEFAULT_WAIT_SECONDS, SCHEMAS, type ToolName } from './tool-schemas.js'

const DESCRIPTIONS: Record<ToolName, string> = {
  trinity_inbox: 'Unread tasks, messages and cancellations for this instance, oldest first; they count as read once returned. Nothing is lost across a restart.',
  trinity_claim: 'Start a task from the inbox: reports it started and keeps its lease alive while this session lives. Call before working on it.',
  trinity_report: 'Report on a claimed task: progress, completed (with output) or failed (with error). The lease token is filled in; refused for an unknown, unclaimed, cancelled or stale task.',
  trinity_send: 'Send a message to another instance (or `all`); it lands in their inbox.',
  trinity_submit: 'Submit a task to the hub, routed by type; with wait: true, returns its result when it finishes (bounded by timeoutSeconds).',
  trinity_status: 'The hub: instances with their health and load, and task counts by state.',
  trinity_messages: 'The hub\'s message log, oldest first, filtered by from / to.',
}

export interface ToolDefinition {
  name: ToolName
  description: string
  inputSchema: { type: 'object'; [key: string]: unknown }
}

/** What tools/list answers. */
export function toolDefinitions(): ToolDefinition[] {
  return (Object.keys(SCHEMAS) as ToolName[]).map((name) => ({
    name, description: DESCRIPTIONS[name],
    // A plain JSON copy: the host gets JSON Schema, not TypeBox's object.
    inputSchema: JSON.parse(JSON.stringify(SCHEMAS[name])) as ToolDefinition['inputSchema'],
  }))
}

export interface ToolResult {
  [key: string]: unknown
  content: { type: 'text'; text: string }[]
  structuredContent?: Record<string, unknown>
  isError?: boolean
}

type Handlers = { [K in ToolName]: (args: Static<(typeof SCHEMAS)[K]>, instance: McpInstance, owner: string) => Promise<unknown> }

const HANDLERS: Handlers = {
  trinity_inbox: async (_args, instance) => ({ entries: instance.inbox() }),
  trinity_claim: (args, instance, owner) => instance.claim(args.taskId, owner),
  trinity_report: (args, instance, owner) => instance.report(args.taskId, {
    state: args.state, ...(args.output === undefined ? {} : { output: args.output }),
    ...(args.error === undefined ? {} : { error: args.error }), ...(args.retryable === undefined ? {} : { retryable: args.retryable }),
  }, owner),
  trinity_send: (args, instance) => instance.send(args.to, args.message, args.replyTo),
  trinity_submit: (args, instance) => instance.submit(
    { type: args.type, content: args.content ?? null, ...(args.priority === undefined ? {} : { priority: args.priority }), ...(args.id === undefined ? {} : { id: args.id }) },
    args.wait === true ? (args.timeoutSeconds ?? DEFAULT_WAIT_SECONDS) * 1000 : undefined,
  ),
  trinity_status: (_args, instance) => instance.status(),
  trinity_messages: (args, instance) => instance.messages(args),
}

const isToolName = (name: string): name is ToolName => Object.hasOwn(SCHEMAS, name)

/** tools/call: validates the arguments, runs the tool, and turns any failure into a tool error. */
export async function callTool(name: string, args: unknown, instance: McpInstance, owner: string): Promise<ToolResult> {
  try {
    if (!isToolName(name)) throw new TrinityError('TRINITY_ERR_NOT_FOUND', `no tool ${JSON.stringify(name)} (tools: ${Object.keys(SCHEMAS).join(', ')})`)
    const checked = validate(SCHEMAS[name], args ?? {})
    if (!checked.ok) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', checked.reason, { field: checked.reason.split(':')[0] ?? '(payload)' })
    const handler = HANDLERS[name] as (args: unknown, instance: McpInstance, owner: string) => Promise<unknown>
    const value = await handler(checked.value, instance, owner)
    return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }], structuredContent: { result: value } }
  } catch (err) {
    const error = isTrinityError(err) ? err : new TrinityError('TRINITY_ERR_INTERNAL', (err as Error).message, { cause: err })
    return { isError: true, content: [{ type: 'text', text: `${error.code}: ${error.message}` }], structuredContent: { error: error.toJSON() } }
  }
}
