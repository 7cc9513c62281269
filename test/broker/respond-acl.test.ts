/**
 * Who may answer a task that asks (issue #11): with broker auth on, a
 * `client` user may publish on `task/{id}/respond`, as it may submit; an
 * `instance` user may not (its answer is acknowledged and dropped, as any
 * denied publish), so an agent cannot approve its own question.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { BrokerUser } from '../../src/config/schema.js'
import { connect, nextMessage, record, startBroker, tcpUrl, topics } from './helpers.js'

const users: BrokerUser[] = [
  { username: 'root', password: 'root-secret', role: 'admin' },
  { username: 'asker', password: 'asker-secret', role: 'instance' },
  { username: 'operator', password: 'operator-secret', role: 'client' },
]

test('a client may publish an answer on task/{id}/respond; an instance may not', async (t) => {
  const broker = await startBroker(t, { auth: { enabled: true, users } })
  const watcher = await connect(t, tcpUrl(broker), { username: 'root', password: 'root-secret' })
  await watcher.subscribeAsync(topics.anyTaskRespond, { qos: 1 })
  const seen = record(watcher)
  const asker = await connect(t, tcpUrl(broker), { username: 'asker', password: 'asker-secret' })
  const operator = await connect(t, tcpUrl(broker), { username: 'operator', password: 'operator-secret' })

  await asker.publishAsync(topics.taskRespond('t-1'), '{"answer":"self-approved"}', { qos: 1 })
  const answered = nextMessage(watcher, (topic) => topic === topics.taskRespond('t-1'))
  await operator.publishAsync(topics.taskRespond('t-1'), '{"answer":"approved"}', { qos: 1 })
  assert.equal((await answered).payload, '{"answer":"approved"}')
  assert.deepEqual(seen.map((m) => m.payload), ['{"answer":"approved"}'], 'the instance\'s answer was dropped')
  assert.equal(asker.connected, true, 'dropped, not disconnected')
})
