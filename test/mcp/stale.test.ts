/**
 * Stale leases and cancels are refused with a clear tool error, found out
 * from the hub before anything is sent: the hub would drop such a report
 * silently, and the agent would believe its work was taken.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { TaskDetail } from '../../src/contract/http.js'
import { http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { errorText, startMcp, waitOnline } from '../helpers/mcp.js'

const { dir, cleanups } = testScope()

test('a report on a lease that ran out, or on a cancelled task, is a tool error', async () => {
  // One attempt and a short lease: an unclaimed assignment runs out and the task fails for good.
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub'), { tasks: { lease: '3s', maxAttempts: 1 } }))
  cleanups.push(() => hub.stop())
  const reviewer = await startMcp({ id: 'reviewer', capabilities: ['code_review'], busUrl: hub.mqttUrl, hubUrl: hub.httpUrl, stateDir: join(dir.path, 'reviewer'), cwd: dir.path })
  cleanups.push(() => reviewer.close())
  await waitOnline(hub.httpUrl, 'reviewer')
  const record = async (id: string): Promise<TaskDetail> => (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${id}`)).body

  const expired = (await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'code_review', content: 'nobody claims this in time' })).body.id
  await reviewer.waitForPush((p) => p.meta['taskId'] === expired, 'the push')
  await waitFor(async () => ['failed', 'dead'].includes((await record(expired)).state), 60_000, 'the lease to run out')
  const claim = await reviewer.call('trinity_claim', { taskId: expired })
  assert.equal(claim.isError, true)
  assert.match(errorText(claim), /^TRINITY_ERR_LEASE_STALE: .*no longer current; the task is (failed|dead)/)
  const report = await reviewer.call('trinity_report', { taskId: expired, state: 'completed', output: 'late' })
  assert.equal(report.isError, true)
  assert.match(errorText(report), /^TRINITY_ERR_LEASE_STALE: /)
  assert.equal((await record(expired)).result, undefined)

  const cancelled = (await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'code_review', content: 'cancelled while claimed' })).body.id
  await reviewer.waitForPush((p) => p.meta['taskId'] === cancelled, 'the push')
  await reviewer.result('trinity_claim', { taskId: cancelled })
  assert.equal((await http(hub.httpUrl, 'POST', `/tasks/${cancelled}/cancel`)).status, 200)
  await reviewer.waitForPush((p) => p.meta['kind'] === 'cancel' && p.meta['taskId'] === cancelled, 'the cancel push')
  const afterCancel = await reviewer.call('trinity_report', { taskId: cancelled, state: 'completed', output: 'too late' })
  assert.equal(afterCancel.isError, true)
  assert.match(errorText(afterCancel), /^TRINITY_ERR_TASK_CONFLICT: .*cancelled/)
  assert.equal((await record(cancelled)).state, 'cancelled')
})
