/**
 * `trinity mcp --http PORT`: the same server over streamable HTTP, for hosts
 * that connect to a URL. The SDK's StreamableHTTPClientTransport initializes
 * a session, lists the tools, and gets the channel push for a task over the
 * session's event stream; the task is claimed and completed through it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { TaskDetail } from '../../src/contract/http.js'
import { CLI, http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'

const { dir, cleanups } = testScope()

test('over streamable HTTP: tools, a channel push for a task, claim and report', async () => {
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub'), {}))
  cleanups.push(() => hub.stop())
  const child = spawn(process.execPath, [CLI, 'mcp', '--id', 'web-reviewer', '--capabilities', 'code_review', '--url', hub.mqttUrl, '--hub', hub.httpUrl, '--state-dir', join(dir.path, 'state'), '--http', '0'], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  cleanups.push(async () => { if (child.exitCode === null) child.kill('SIGTERM'); await exited })
  let stderr = ''
  let stdout = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  await waitFor(() => /MCP over streamable HTTP at (\S+)/.test(stderr), 60_000, `the URL on stderr (${stderr})`)
  const url = /MCP over streamable HTTP at (\S+)/.exec(stderr)?.[1] ?? ''
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/)

  const client = new Client({ name: 'trinity-test-http-host', version: '1.0.0' }, { capabilities: {} })
  const pushes: { meta: Record<string, string> }[] = []
  client.fallbackNotificationHandler = async (n) => { if (n.method === 'notifications/claude/channel') pushes.push(n.params as unknown as { meta: Record<string, string> }) }
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  cleanups.push(() => client.close())
  assert.equal((await client.listTools()).tools.length, 7)
  await waitFor(async () => {
    const { body } = await http<{ instances: { id: string; state: string }[] }>(hub.httpUrl, 'GET', '/instances')
    return body.instances.some((i) => i.id === 'web-reviewer' && i.state === 'online')
  }, 60_000, 'online')

  const id = (await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'code_review', content: 'over http' })).body.id
  await waitFor(() => pushes.some((p) => p.meta['taskId'] === id), 60_000, `the push over the event stream (${stderr})`)
  const call = async (name: string, args: Record<string, unknown>): Promise<CallToolResult> => (await client.callTool({ name, arguments: args })) as CallToolResult
  assert.notEqual((await call('trinity_claim', { taskId: id })).isError, true)
  assert.notEqual((await call('trinity_report', { taskId: id, state: 'completed', output: 'ok over http' })).isError, true)
  await waitFor(async () => (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${id}`)).body.state === 'completed', 60_000, 'completed')
  assert.equal(stdout, '', 'nothing on stdout in HTTP mode either')
})
