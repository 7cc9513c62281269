/**
 * `trinity mcp` as an MCP host runs it: the SDK's Client over
 * StdioClientTransport, which starts `node dist/src/cli/main.js mcp …` as a
 * child process. Collects the channel pushes and resource updates it gets,
 * and can SIGKILL the child. Every session is closed by the caller's cleanups.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { ResourceUpdatedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { ENV } from '../../src/config/env.js'
import { CLI, http, waitFor } from './hub.js'

export interface ChannelPush {
  content: string
  meta: Record<string, string>
}

export interface McpSession {
  readonly client: Client
  readonly pid: number
  /** Every `notifications/claude/channel` so far, in order. */
  readonly channel: ChannelPush[]
  /** URIs of every `notifications/resources/updated` so far. */
  readonly updated: string[]
  /** What the client could not parse or handle: anything but MCP on the child's stdout lands here. */
  readonly errors: Error[]
  stderr(): string
  /** The first push (past or future) that matches. */
  waitForPush(match: (push: ChannelPush) => boolean, what: string): Promise<ChannelPush>
  /** A tool call; `structuredContent.result` on success, the whole result for an error. */
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>
  result<T>(name: string, args?: Record<string, unknown>): Promise<T>
  kill(): Promise<void>
  close(): Promise<void>
}

export interface McpStart {
  id: string
  busUrl: string
  hubUrl: string
  stateDir: string
  /** The child's working directory: one without a config/trinity.yaml. */
  cwd: string
  capabilities?: string[]
  /** Extra environment for the child (e.g. TRINITY_TOKEN). */
  env?: Record<string, string>
}

export async function startMcp(options: McpStart): Promise<McpSession> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !(Object.values(ENV) as string[]).includes(key)) env[key] = value
  const args = [CLI, 'mcp', '--id', options.id, '--url', options.busUrl, '--hub', options.hubUrl, '--state-dir', options.stateDir]
  if (options.capabilities !== undefined) args.push('--capabilities', options.capabilities.join(','))
  Object.assign(env, options.env)
  const transport = new StdioClientTransport({ command: process.execPath, args, cwd: options.cwd, env, stderr: 'pipe' })
  let stderr = ''
  transport.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const closed = new Promise<void>((resolve) => { transport.onclose = () => resolve() })
  const client = new Client({ name: 'trinity-test-host', version: '1.0.0' }, { capabilities: {} })
  const channel: ChannelPush[] = []
  const updated: string[] = []
  const errors: Error[] = []
  client.onerror = (err) => void errors.push(err)
  client.fallbackNotificationHandler = async (notification) => {
    if (notification.method === 'notifications/claude/channel') channel.push(notification.params as unknown as ChannelPush)
  }
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri))
  // The SDK's Client chains its own onclose: ours must be set before connect, which wraps it.
  await client.connect(transport)
  const pid = transport.pid
  if (pid === null) throw new Error(`trinity mcp did not start:\n${stderr}`)
  const session: McpSession = {
    client, pid, channel, updated, errors,
    stderr: () => stderr,
    async waitForPush(match, what) {
      let found: ChannelPush | undefined
      await waitFor(() => (found = channel.find(match)) !== undefined, 60_000, `${what} (pushes so far: ${JSON.stringify(channel)}; stderr: ${stderr})`)
      return found as ChannelPush
    },
    async call(name, args = {}) {
      // Beyond the SDK's 60 s default: a loaded machine makes a waiting submit slower, not wrong.
      return (await client.callTool({ name, arguments: args }, undefined, { timeout: 180_000 })) as CallToolResult
    },
    async result<T>(name: string, args: Record<string, unknown> = {}): Promise<T> {
      const answer = await session.call(name, args)
      if (answer.isError === true) throw new Error(`${name} failed: ${JSON.stringify(answer.content)}`)
      return (answer.structuredContent as { result: T }).result
    },
    async kill() {
      process.kill(pid, 'SIGKILL')
      await closed
    },
    async close() {
      await client.close().catch(() => undefined)
      await closed
    },
  }
  return session
}

/** The text of a tool error, for assertions on its code and words. */
export function errorText(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n')
}

/** Until the hub lists `id` online (with `capability`, when given): its birth has reached the registry. */
export async function waitOnline(httpUrl: string, id: string, capability?: string): Promise<void> {
  await waitFor(async () => {
    const { body } = await http<{ instances: { id: string; state: string; capabilities: string[] }[] }>(httpUrl, 'GET', '/instances')
    return body.instances.some((i) => i.id === id && i.state === 'online' && (capability === undefined || i.capabilities.includes(capability)))
  }, 60_000, `${id} online${capability === undefined ? '' : ` with ${capability}`}`)
}
