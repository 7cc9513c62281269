/**
 * The durable inbox: `trinity mcp` SIGKILLed after a task and a message were
 * delivered (pushed, so journaled and acknowledged) and before the agent read
 * them; a new one with the same id and state dir returns both from
 * trinity_inbox, each once. The message exists nowhere else for this
 * instance: the broker forgot it at the PUBACK and the hub never resends one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import type { TaskDetail } from '../../src/contract/http.js'
import { CLI, http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { startMcp, type McpSession, waitOnline } from '../helpers/mcp.js'

const { dir, cleanups } = testScope()

interface Entry { kind: string; taskId?: string; attempt?: number; id?: string; from?: string; message?: string }

test('SIGKILL between delivery and read loses no inbox frame and duplicates none', async () => {
  // A lease long enough that a loaded machine never runs it out between the push and the claim.
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub'), { tasks: { lease: '30s' } }))
  cleanups.push(() => hub.stop())
  const start = async (): Promise<McpSession> => {
    const session = await startMcp({ id: 'reviewer', capabilities: ['code_review'], busUrl: hub.mqttUrl, hubUrl: hub.httpUrl, stateDir: join(dir.path, 'reviewer'), cwd: dir.path })
    cleanups.push(() => session.close())
    return session
  }
  const online = (): Promise<void> => waitOnline(hub.httpUrl, 'reviewer')

  const first = await start()
  await online()
  const task = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'code_review', content: 'review the journal' })
  assert.equal(task.status, 202)
  const sent = await http<{ id: string }>(hub.httpUrl, 'POST', '/send', { from: 'author', to: 'reviewer', message: 'the diff is on branch mcp' })
  assert.equal(sent.status, 202)
  await first.waitForPush((p) => p.meta['taskId'] === task.body.id, 'the task push')
  await first.waitForPush((p) => p.meta['messageId'] === sent.body.id, 'the message push')
  await first.kill()

  const second = await start()
  // Woken again for what waits unread: the journal's entries are pushed once the host initializes.
  await second.waitForPush((p) => p.meta['messageId'] === sent.body.id, 'the message pushed again after the restart')
  await online()
  // The Will sent the task back to the queue; the new session gets it again under a new lease,
  // which supersedes the journaled one: wait for that, so the inbox below is the settled one.
  const current = async (): Promise<TaskDetail> => (await http<TaskDetail>(hub.httpUrl, 'GET', `/tasks/${task.body.id}`)).body
  await waitFor(async () => {
    const leg = (await current()).assignments[0]
    const resource = await second.client.readResource({ uri: 'trinity://inbox' })
    const text = resource.contents[0] !== undefined && 'text' in resource.contents[0] ? resource.contents[0].text : '{"entries":[]}'
    const entries = (JSON.parse(text) as { entries: Entry[] }).entries
    return leg?.instance === 'reviewer' && entries.some((e) => e.kind === 'task' && e.attempt === leg.attempts)
  }, 60_000, 'the task assigned again and journaled')

  const { entries } = await second.result<{ entries: Entry[] }>('trinity_inbox')
  const tasks = entries.filter((e) => e.kind === 'task')
  const messages = entries.filter((e) => e.kind === 'message')
  assert.deepEqual(tasks.map((e) => e.taskId), [task.body.id], JSON.stringify(entries))
  assert.deepEqual(messages.map((e) => [e.id, e.from, e.message]), [[sent.body.id, 'author', 'the diff is on branch mcp']], JSON.stringify(entries))
  assert.deepEqual((await second.result<{ entries: Entry[] }>('trinity_inbox')).entries, [])

  // The task the new session holds is the hub's current one: it claims and completes.
  await second.result('trinity_claim', { taskId: task.body.id })
  await second.result('trinity_report', { taskId: task.body.id, state: 'completed', output: 'approved after a restart' })
  await waitFor(async () => (await current()).state === 'completed', 60_000, 'completed')
  assert.equal((await current()).result, 'approved after a restart')

  // One process per state dir: a second one on it refuses to start, saying why.
  const rival = spawnSync(process.execPath, [CLI, 'mcp', '--id', 'reviewer', '--url', hub.mqttUrl, '--hub', hub.httpUrl, '--state-dir', join(dir.path, 'reviewer')], { cwd: dir.path, encoding: 'utf8', input: '', timeout: 60_000 })
  assert.equal(rival.status, 1, rival.stderr)
  assert.match(rival.stderr, /TRINITY_ERR_STATE_LOCKED/)
  assert.equal(rival.stdout, '', 'nothing but MCP on stdout')
})
