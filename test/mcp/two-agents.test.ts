/**
 * Two coding agents through one hub, each behind its own `trinity mcp`: the
 * author submits a code_review and waits; the reviewer is woken, claims,
 * reviews, reports; the author's call returns the result. A trinity_send
 * from one lands in the other's inbox. And a hub that does not answer is a
 * clear tool error.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Hub } from '../../src/hub.js'
import { freePort, startTestHub, testConfig, testScope } from '../helpers/hub.js'
import { errorText, startMcp, type McpSession, waitOnline } from '../helpers/mcp.js'

const { dir, cleanups } = testScope()
let hub: Hub | undefined

async function theHub(): Promise<Hub> {
  if (hub !== undefined) return hub
  // A lease long enough that a loaded machine never runs it out between the push and the claim.
  const started = await startTestHub(await testConfig(join(dir.path, 'hub'), { tasks: { lease: '30s' } }))
  cleanups.push(() => started.stop())
  hub = started
  return started
}

async function session(id: string, capabilities: string[], hubUrl?: string): Promise<McpSession> {
  const h = await theHub()
  const s = await startMcp({ id, capabilities, busUrl: h.mqttUrl, hubUrl: hubUrl ?? h.httpUrl, stateDir: join(dir.path, id), cwd: dir.path })
  cleanups.push(() => s.close())
  await waitOnline(h.httpUrl, id)
  return s
}

test('one session submits code_review and waits; the other is woken, claims, reports; the first gets the result', async () => {
  const author = await session('author', [])
  const reviewer = await session('reviewer', ['code_review'])

  const waiting = author.result<{ id: string; state: string; result?: unknown; timedOut?: boolean }>('trinity_submit', {
    type: 'code_review', content: { diff: '+ const x = 1' }, wait: true, timeoutSeconds: 120,
  })
  const push = await reviewer.waitForPush((p) => p.meta['kind'] === 'task' && p.meta['type'] === 'code_review', 'the review task')
  const taskId = push.meta['taskId'] as string
  const { entries } = await reviewer.result<{ entries: { kind: string; taskId?: string; content?: unknown }[] }>('trinity_inbox')
  assert.deepEqual(entries.map((e) => [e.kind, e.taskId, e.content]), [['task', taskId, { diff: '+ const x = 1' }]])
  await reviewer.result('trinity_claim', { taskId })
  await reviewer.result('trinity_report', { taskId, state: 'progress', output: 'reading the diff' })
  await reviewer.result('trinity_report', { taskId, state: 'completed', output: { verdict: 'approve', comments: 1 } })

  const outcome = await waiting
  assert.equal(outcome.id, taskId)
  assert.equal(outcome.state, 'completed')
  assert.deepEqual(outcome.result, { verdict: 'approve', comments: 1 })
  assert.equal(outcome.timedOut, undefined)
  // The next test starts these ids again: one process per id.
  await author.close()
  await reviewer.close()
})

test('a trinity_send from one session lands in the other\'s inbox, and in trinity_messages', async () => {
  const author = await session('author', [])
  const reviewer = await session('reviewer', ['code_review'])
  const sent = await author.result<{ id: string; from: string; to: string }>('trinity_send', { to: 'reviewer', message: 'thanks for the review' })
  assert.equal(sent.from, 'author')
  const push = await reviewer.waitForPush((p) => p.meta['messageId'] === sent.id, 'the message push')
  assert.equal(push.meta['from'], 'author')
  assert.match(push.content, /thanks for the review/)
  const { entries } = await reviewer.result<{ entries: { kind: string; id?: string; from?: string; message?: string }[] }>('trinity_inbox')
  assert.deepEqual(entries.filter((e) => e.kind === 'message').map((e) => [e.id, e.from, e.message]), [[sent.id, 'author', 'thanks for the review']])

  const log = await reviewer.result<{ messages: { id: string }[] }>('trinity_messages', { from: 'author', to: 'reviewer' })
  assert.ok(log.messages.some((m) => m.id === sent.id), JSON.stringify(log))
  const status = await author.result<{ instances: { id: string; state: string }[]; queue: Record<string, number> }>('trinity_status')
  assert.deepEqual(status.instances.filter((i) => i.id === 'author' || i.id === 'reviewer').map((i) => [i.id, i.state]).sort(), [['author', 'online'], ['reviewer', 'online']])
  assert.equal(typeof status.queue['completed'], 'number')
  await author.close()
  await reviewer.close()
})

test('a hub that does not answer is TRINITY_ERR_HUB_UNREACHABLE, as a tool error', async () => {
  const nowhere = `http://127.0.0.1:${await freePort()}`
  const lost = await session('lost', [], nowhere)
  const status = await lost.call('trinity_status')
  assert.equal(status.isError, true)
  assert.match(errorText(status), new RegExp(`^TRINITY_ERR_HUB_UNREACHABLE: .*${nowhere.replaceAll('.', '\\.')}`))
  const submit = await lost.call('trinity_submit', { type: 'code_review', content: 'x' })
  assert.equal(submit.isError, true)
  assert.match(errorText(submit), /^TRINITY_ERR_HUB_UNREACHABLE: /)
})
