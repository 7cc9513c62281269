/**
 * `trinity mcp` as a coding agent's host runs it: the SDK's Client starts it
 * over stdio, lists its tools, is woken by a channel push for a submitted
 * task, claims it, keeps it past its lease, reports it; the hub records it
 * completed once. code_review has no route in the shipped config: capability
 * routing carries it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/load.js'
import type { TaskDetail } from '../../src/contract/http.js'
import type { Hub } from '../../src/hub.js'
import { ROOT, http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { errorText, startMcp, waitOnline } from '../helpers/mcp.js'

const { dir, cleanups } = testScope()
/** Short, so that the wait below outlasts it: only the keep-alive keeps the claim. */
const LEASE_MS = 6000

async function hubAndReviewer(): Promise<{ hub: Hub; reviewer: Awaited<ReturnType<typeof startMcp>> }> {
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub'), { tasks: { lease: `${LEASE_MS}ms`, maxAttempts: 3 } }))
  cleanups.push(() => hub.stop())
  const reviewer = await startMcp({ id: 'reviewer', capabilities: ['code_review'], busUrl: hub.mqttUrl, hubUrl: hub.httpUrl, stateDir: join(dir.path, 'reviewer'), cwd: dir.path })
  cleanups.push(() => reviewer.close())
  await waitOnline(hub.httpUrl, 'reviewer', 'code_review')
  return { hub, reviewer }
}

test('the shipped config has no code_review route: capability routing must carry it', () => {
  const shipped = parseConfig(readFileSync(join(ROOT, 'config/trinity.yaml'), 'utf8'), 'config/trinity.yaml')
  assert.equal(shipped.routes['code_review'], undefined)
})

test('a host lists the tools, is pushed a task, claims it past its lease, reports it: completed once', async () => {
  const { hub, reviewer } = await hubAndReviewer()

  const { tools } = await reviewer.client.listTools()
  assert.deepEqual(tools.map((t) => t.name).sort(), ['trinity_claim', 'trinity_inbox', 'trinity_messages', 'trinity_report', 'trinity_send', 'trinity_status', 'trinity_submit'])
  const report = tools.find((t) => t.name === 'trinity_report')
  assert.equal(report?.inputSchema.type, 'object')
  assert.deepEqual([...(report?.inputSchema.required ?? [])].sort(), ['state', 'taskId'])
  const capabilities = reviewer.client.getServerCapabilities()
  assert.deepEqual(capabilities?.experimental?.['claude/channel'], {})
  assert.equal(capabilities?.resources?.subscribe, true)
  await reviewer.client.subscribeResource({ uri: 'trinity://inbox' })

  const submitted = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'code_review', content: 'please review src/mcp/journal.ts' })
  assert.equal(submitted.status, 202)
  const taskId = submitted.body.id
  const push = await reviewer.waitForPush((p) => p.meta['taskId'] === taskId, 'the channel push for the task')
  assert.equal(push.meta['kind'], 'task')
  assert.equal(push.meta['type'], 'code_review')
  assert.equal(push.meta['attempt'], '1')
  assert.match(push.content, /code_review/)
  assert.match(push.content, /please review src\/mcp\/journal\.ts/)
  assert.match(push.content, /trinity_claim/)
  const assigned = (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${taskId}`)).body
  assert.equal(push.meta['leaseToken'], assigned.assignments[0]?.leaseToken)
  // Routed by the capability its birth declared: the leg's targets are the type itself.
  assert.deepEqual(assigned.assignments[0]?.targets, ['code_review'])
  await waitFor(() => reviewer.updated.includes('trinity://inbox'), 60_000, 'resources/updated for trinity://inbox')

  const inbox = await reviewer.result<{ entries: { kind: string; taskId?: string; content?: unknown }[] }>('trinity_inbox')
  assert.deepEqual(inbox.entries.map((e) => [e.kind, e.taskId, e.content]), [['task', taskId, 'please review src/mcp/journal.ts']])
  assert.deepEqual((await reviewer.result<{ entries: unknown[] }>('trinity_inbox')).entries, [], 'read entries are not returned again')

  const reportBeforeClaim = await reviewer.call('trinity_report', { taskId, state: 'completed', output: 'too early' })
  assert.equal(reportBeforeClaim.isError, true)
  assert.match(errorText(reportBeforeClaim), /^TRINITY_ERR_TASK_CONFLICT: .*trinity_claim/)

  const claimed = await reviewer.result<{ taskId: string; attempt: number }>('trinity_claim', { taskId })
  assert.equal(claimed.attempt, 1)
  await waitFor(async () => (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${taskId}`)).body.state === 'running', 60_000, 'running')
  // Longer than the lease: only the keep-alive keeps it on this attempt.
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 1.5))

  const done = await reviewer.result<{ state: string }>('trinity_report', { taskId, state: 'completed', output: { verdict: 'approve', notes: ['small files'] } })
  assert.equal(done.state, 'completed')
  await waitFor(async () => (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${taskId}`)).body.state === 'completed', 60_000, 'completed')
  const record = (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${taskId}`)).body
  assert.equal(record.assignments.length, 1)
  assert.equal(record.assignments[0]?.attempts, 1)
  assert.equal(record.assignments[0]?.instance, 'reviewer')
  assert.deepEqual(record.result, { verdict: 'approve', notes: ['small files'] })

  // Reported once: a second report is refused before it reaches the hub.
  const again = await reviewer.call('trinity_report', { taskId, state: 'completed', output: 'twice' })
  assert.equal(again.isError, true)
  assert.match(errorText(again), /^TRINITY_ERR_LEASE_STALE: /)
  const unknown = await reviewer.call('trinity_claim', { taskId: 'no-such-task' })
  assert.equal(unknown.isError, true)
  assert.match(errorText(unknown), /^TRINITY_ERR_TASK_NOT_FOUND: /)
  const bad = await reviewer.call('trinity_report', { taskId, state: 'finished' })
  assert.equal(bad.isError, true)
  assert.match(errorText(bad), /^TRINITY_ERR_BAD_REQUEST: .*state: must be equal to one of the allowed values/)
  assert.deepEqual(reviewer.errors.map((e) => e.message), [], 'stdout carried nothing but MCP')
})
