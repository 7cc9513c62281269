/**
 * Hand edits against the conflict rule: this computer's own status file is
 * ours, other computers' files are theirs, message files are the union of
 * the remote's copy and what we have not had a receipt for, deduplicated by
 * id. A rebase left in the bridge's clone is aborted, never pushed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ComputerMessage } from '../../src/contract/payloads/bridge.js'
import { topicsFor } from '../../src/contract/topics.js'
import { startBridge } from '../../bridges/git/bridge.js'
import { parseMessages, parseStatus } from '../../bridges/git/format.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, git, humanClone, Recorder, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()

test('hand-edited files are resolved by the rule, and a rebase left in the clone is cleaned up', async () => {
  const remote = bareRepo(dir.path)
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub')))
  cleanups.push(() => hub.stop())
  const bridge = async (n: string, peer: string): Promise<Awaited<ReturnType<typeof startBridge>>> => {
    const b = await startBridge(resolve(await testConfig(join(dir.path, `data-${n}`), {
      hub: { topicPrefix: `h${n}` },
      sync: syncSection({ computer: n, peers: [peer], remote, workdir: join(dir.path, `sync-${n}`), interval: '1h' }),
    })), { mqttUrl: hub.mqttUrl })
    cleanups.push(() => b.stop())
    return b
  }
  const one = await bridge('1', '2')
  const two = await bridge('2', '1')
  await waitFor(() => one.rounds.at(-1)?.ok === true && two.rounds.at(-1)?.ok === true, 20_000, 'first rounds')
  const receiver = await Recorder.start(hub.mqttUrl, [topicsFor('h2').computerMessage('1')])
  cleanups.push(() => receiver.stop())
  for (const id of ['a1', 'a2', 'a3']) await receiver.client.publishAsync(topicsFor('h1').computerSend('2'), JSON.stringify({ id, message: `body of ${id}` }), { qos: 1 })
  await waitFor(() => one.status().queued === 3, 10_000, 'queued')
  await one.syncNow()
  assert.equal(one.status().awaitingReceipt, 3)

  // A human edits all three kinds of file in their own clone and pushes.
  const human = humanClone(remote, join(dir.path, 'human'))
  const own1 = join(human, 'coordination/COMPUTER_1.md')
  writeFileSync(own1, readFileSync(own1, 'utf8').replace(/^state: .*$/m, 'state: EMERGENCY') + '\nhand edit\n')
  const file12 = join(human, 'coordination/messages/1_TO_2.md')
  const text = readFileSync(file12, 'utf8')
  const start = text.indexOf('### #2 ')
  const end = text.indexOf('### #3 ')
  writeFileSync(file12, `${text.slice(0, start)}${text.slice(end)}\n## a note a human left\n`)
  const status2 = join(human, 'coordination/COMPUTER_2.md')
  writeFileSync(status2, readFileSync(status2, 'utf8').replace('queueDepth: 0', 'queueDepth: 42'))
  git(human, 'commit', '-qam', 'hand edits')
  git(human, 'push', '-q', 'origin', 'main')

  // Meanwhile in bridge 1's clone, someone commits a conflicting change and starts a rebase that stops on it.
  const clone1 = join(one.workdir, 'repo')
  writeFileSync(join(clone1, 'coordination/COMPUTER_2.md'), readFileSync(join(clone1, 'coordination/COMPUTER_2.md'), 'utf8').replace('queueDepth: 0', 'queueDepth: 7'))
  git(clone1, 'commit', '-qam', 'local edit')
  git(clone1, 'fetch', '-q', 'origin')
  assert.throws(() => git(clone1, 'rebase', 'origin/main'))
  assert.ok(existsSync(join(clone1, '.git/rebase-merge')) || existsSync(join(clone1, '.git/rebase-apply')), 'mid-rebase')

  const round = await one.syncNow()
  assert.equal(round.ok, true, round.error ?? '')
  assert.ok(!existsSync(join(clone1, '.git/rebase-merge')) && !existsSync(join(clone1, '.git/rebase-apply')))
  git(human, 'pull', '-q', '--rebase', 'origin', 'main')
  // Own file: ours.
  const mine = parseStatus(readFileSync(own1, 'utf8'))
  assert.ok(mine.ok && mine.status.state !== 'EMERGENCY' && !readFileSync(own1, 'utf8').includes('hand edit'))
  // Others' files: theirs.
  assert.match(readFileSync(join(clone1, 'coordination/COMPUTER_2.md'), 'utf8'), /queueDepth: 42/)
  assert.ok(!readFileSync(status2, 'utf8').includes('queueDepth: 7'), 'the local conflicting edit was not pushed')
  assert.ok(!/^(<<<<<<<|>>>>>>>)/m.test(readFileSync(status2, 'utf8')), 'no conflict markers')
  // Messages: the union, deduplicated by id, in order.
  assert.deepEqual(parseMessages(readFileSync(file12, 'utf8')).messages.map((m) => [m.id, m.seq]), [['a1', 1], ['a2', 2], ['a3', 3]])

  await two.syncNow()
  const got = receiver.json<ComputerMessage>(topicsFor('h2').computerMessage('1'))
  assert.deepEqual(got.map((m) => m.id), ['a1', 'a2', 'a3'])
  git(human, 'pull', '-q', '--rebase', 'origin', 'main')
  // Computer 2's own file is its own again.
  assert.match(readFileSync(status2, 'utf8'), /queueDepth: 0/)
  await one.syncNow()
  assert.equal(one.status().awaitingReceipt, 0)
})
