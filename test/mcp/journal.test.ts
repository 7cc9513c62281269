/**
 * The durable inbox's rules, on the real SQLite journal, and end to end: a
 * frame delivered twice (as QoS 1 redelivers one whose PUBACK was lost) is
 * shown to the agent once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { InboxFrame } from '../../src/contract/payloads/inbox.js'
import { topicsFor } from '../../src/contract/topics.js'
import { isTrinityError } from '../../src/errors.js'
import { Journal } from '../../src/mcp/journal.js'
import { connectBus } from '../../src/net/bus-client.js'
import { startTestHub, testConfig, testScope } from '../helpers/hub.js'
import { startMcp, waitOnline } from '../helpers/mcp.js'

const { dir, cleanups } = testScope()

const task = (id: string, leaseToken: string, attempt = 1): Extract<InboxFrame, { kind: 'task' }> => ({ kind: 'task', task: { id, type: 'code_review', content: `review ${id}`, priority: 'normal' }, leaseToken, leaseMs: 60_000, attempt })
const message = (id: string): Extract<InboxFrame, { kind: 'message' }> => ({ kind: 'message', message: { id, from: 'author', to: 'reviewer', message: `hello ${id}`, ts: 1 } })

test('the journal: duplicates dropped, a new lease supersedes, read entries leave, tasks stay until finished, one process per dir', () => {
  const stateDir = join(dir.path, 'unit')
  const journal = new Journal(stateDir)
  try {
    const first = journal.record(task('t-1', 'lease-a'))
    assert.notEqual(first, 'duplicate')
    assert.equal(journal.record(task('t-1', 'lease-a')), 'duplicate')
    assert.notEqual(journal.record(message('m-1')), 'duplicate')
    assert.equal(journal.record(message('m-1')), 'duplicate')
    assert.deepEqual(journal.unread().map((e) => e.frame.kind), ['task', 'message'])

    // The hub took t-1 back and gave it again: only the new lease is shown.
    journal.record(task('t-1', 'lease-b', 2))
    const unread = journal.unread()
    assert.deepEqual(unread.map((e) => (e.frame.kind === 'task' ? `${e.frame.task.id}@${e.frame.leaseToken}` : e.frame.kind)), ['message', 't-1@lease-b'])
    assert.equal(journal.task('t-1')?.frame.leaseToken, 'lease-b')

    journal.markRead(unread.map((e) => e.seq))
    assert.deepEqual(journal.unread(), [])
    // A read message's tombstone still recognises a redelivery.
    assert.equal(journal.record(message('m-1')), 'duplicate')
    const t1 = journal.task('t-1')
    assert.equal(t1?.closed, false, 'a read task stays until it is reported finished')
    journal.claim(t1?.seq ?? -1)
    assert.equal(journal.task('t-1')?.claimed, true)

    journal.record({ kind: 'cancel', taskId: 't-1', leaseToken: 'lease-b' })
    assert.equal(journal.task('t-1')?.cancelled, true)
    journal.close(t1?.seq ?? -1, 'finished')
    assert.equal(journal.task('t-1')?.closed, true)

    assert.throws(() => new Journal(stateDir), (err) => isTrinityError(err, 'TRINITY_ERR_STATE_LOCKED'))
  } finally {
    journal.closeDb()
  }
  // Closed: the dir is free again, and what was written is still there.
  const reopened = new Journal(stateDir)
  assert.equal(reopened.task('t-1')?.closed, true)
  assert.equal(reopened.unread().length, 1, 'the unread cancel')
  reopened.closeDb()
})

test('a frame delivered twice reaches the agent once', async () => {
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub'), {}))
  cleanups.push(() => hub.stop())
  const reviewer = await startMcp({ id: 'reviewer', capabilities: ['code_review'], busUrl: hub.mqttUrl, hubUrl: hub.httpUrl, stateDir: join(dir.path, 'reviewer'), cwd: dir.path })
  cleanups.push(() => reviewer.close())
  await waitOnline(hub.httpUrl, 'reviewer')
  const bus = await connectBus({ url: hub.mqttUrl }, 'first-error')
  cleanups.push(() => bus.endAsync())
  const inbox = topicsFor().instanceInbox('reviewer')
  const frame = JSON.stringify(message('m-twice'))
  await bus.publishAsync(inbox, frame, { qos: 1 })
  await bus.publishAsync(inbox, frame, { qos: 1 })
  await bus.publishAsync(inbox, JSON.stringify(message('m-after')), { qos: 1 })
  // Frames on one topic arrive in order: once m-after is pushed, both copies of m-twice have been handled.
  await reviewer.waitForPush((p) => p.meta['messageId'] === 'm-after', 'the later message')
  assert.equal(reviewer.channel.filter((p) => p.meta['messageId'] === 'm-twice').length, 1)
  const { entries } = await reviewer.result<{ entries: { kind: string; id?: string }[] }>('trinity_inbox')
  assert.deepEqual(entries.map((e) => e.id), ['m-twice', 'm-after'])
})
