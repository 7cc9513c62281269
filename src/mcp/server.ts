/**
 * The MCP server of `trinity mcp` (the SDK's low-level `Server`): tools
 * (tools.ts), the inbox as a resource, and the wake-up pushes. One Server per
 * MCP session (stdio has one; streamable HTTP one per client), all over one
 * McpInstance.
 *
 * Wake on delivery, two ways, both on every new task or message:
 * - `notifications/claude/channel` `{content, meta}`, Claude Code's channel
 *   convention (the server declares `capabilities.experimental['claude/channel']`):
 *   `content` is a line for the agent to read, `meta` the ids to act on
 *   (kind, taskId, leaseToken, type, attempt; messageId, from for a message);
 * - `notifications/resources/updated` for `trinity://inbox`, for hosts that
 *   subscribe to resources instead (only once subscribed, as the spec says).
 * Frames that arrived while no session was up (queued by the broker, or
 * journaled before a restart) are announced once the host has initialized.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import {
  CallToolRequestSchema, ListResourcesRequestSchema, ListToolsRequestSchema, ReadResourceRequestSchema,
  SubscribeRequestSchema, UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js'
import { preview } from '../contract/preview.js'
import { TrinityError } from '../errors.js'
import { VERSION } from '../version.js'
import type { McpInstance } from './instance.js'
import type { JournalEntry } from './journal.js'
import { callTool, toolDefinitions } from './tools.js'

const INBOX_URI = 'trinity://inbox'
/** Announced one by one after initialize; beyond this, one line says how many more wait. */
const ANNOUNCE_AT_START = 20
const PREVIEW = 200

const INSTRUCTIONS = `You are a Trinity instance. Tasks and messages for you arrive in your inbox; you are woken by a channel notification when one does.
Call trinity_inbox to read them, trinity_claim before working on a task, and trinity_report (completed with output, or failed with error) when done.
trinity_submit gives work to other instances by task type; trinity_send messages one.`

export function createMcpServer(instance: McpInstance, owner: string, log: (line: string) => void): { server: Server; close: () => void } {
  const server = new Server(
    { name: 'trinity', version: VERSION },
    {
      capabilities: { tools: {}, resources: { subscribe: true }, experimental: { 'claude/channel': {} } },
      instructions: INSTRUCTIONS,
    },
  )
  let initialized = false
  let subscribed = false

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: toolDefinitions() }))
  server.setRequestHandler(CallToolRequestSchema, (request) => callTool(request.params.name, request.params.arguments, instance, owner))
  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: [{ uri: INBOX_URI, name: 'inbox', title: `Trinity inbox of ${instance.id}`, description: 'Unread tasks, messages and cancellations (reading this does not mark them read; trinity_inbox does)', mimeType: 'application/json' }],
  }))
  server.setRequestHandler(ReadResourceRequestSchema, (request) => {
    if (request.params.uri !== INBOX_URI) throw new TrinityError('TRINITY_ERR_NOT_FOUND', `no resource ${request.params.uri}`)
    return { contents: [{ uri: INBOX_URI, mimeType: 'application/json', text: JSON.stringify({ entries: instance.peek() }, null, 2) }] }
  })
  server.setRequestHandler(SubscribeRequestSchema, (request) => {
    if (request.params.uri === INBOX_URI) subscribed = true
    return {}
  })
  server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    if (request.params.uri === INBOX_URI) subscribed = false
    return {}
  })

  const push = (entry: JournalEntry): void => {
    if (!initialized) return
    const channel = channelNotification(entry)
    if (channel !== undefined) server.notification({ method: 'notifications/claude/channel', params: channel }).catch((err: Error) => log(`channel notification: ${err.message}`))
    if (subscribed) server.sendResourceUpdated({ uri: INBOX_URI }).catch((err: Error) => log(`resources/updated: ${err.message}`))
  }
  const stopListening = instance.onArrival(push)
  server.oninitialized = () => {
    initialized = true
    const unread = instance.unreadEntries()
    const waiting = unread.length
    for (const entry of unread.slice(0, ANNOUNCE_AT_START)) push(entry)
    if (waiting > ANNOUNCE_AT_START) {
      server.notification({ method: 'notifications/claude/channel', params: { content: `${waiting - ANNOUNCE_AT_START} more entries wait in your Trinity inbox: call trinity_inbox.`, meta: { kind: 'summary' } } })
        .catch((err: Error) => log(`channel notification: ${err.message}`))
    }
  }
  return { server, close: stopListening }
}

/** The channel push for a new entry: what a person would say to wake the agent. */
function channelNotification(entry: JournalEntry): { content: string; meta: Record<string, string> } | undefined {
  const { frame } = entry
  switch (frame.kind) {
    case 'task':
      return {
        content: `Task ${frame.task.type} ${frame.task.id} (attempt ${frame.attempt}, ${frame.task.priority}): ${preview(frame.task.content, PREVIEW)}. Call trinity_claim with taskId ${frame.task.id}, then trinity_report when done.`,
        meta: { kind: 'task', taskId: frame.task.id, leaseToken: frame.leaseToken, type: frame.task.type, attempt: String(frame.attempt) },
      }
    case 'message':
      return {
        content: `Message from ${frame.message.from}: ${preview(frame.message.message, PREVIEW)}${frame.message.replyTo === undefined ? '' : ` (a reply to ${frame.message.replyTo})`}. Call trinity_inbox to read it.`,
        meta: { kind: 'message', messageId: frame.message.id, from: frame.message.from },
      }
    case 'cancel':
      return { content: `Task ${frame.taskId} was cancelled by the hub: stop working on it.`, meta: { kind: 'cancel', taskId: frame.taskId, leaseToken: frame.leaseToken } }
    default: {
      const other: { kind: string } = frame
      return { content: `A new ${other.kind} entry is in your Trinity inbox: call trinity_inbox.`, meta: { kind: other.kind } }
    }
  }
}
