/** The topic contract builds and parses every topic, and nothing else in the code spells one. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { topicMatches, topicsFor } from '../src/contract/topics.js'
import { ROOT } from './helpers/hub.js'

test('builders produce the documented names, with a configurable prefix', () => {
  const t = topicsFor()
  assert.equal(t.taskSubmit, 'trinity/task/submit')
  assert.equal(t.taskEvent('abc'), 'trinity/task/abc/event')
  assert.equal(t.taskRespond('abc'), 'trinity/task/abc/respond')
  assert.equal(t.anyTaskRespond, 'trinity/task/+/respond')
  assert.equal(t.instanceInbox('araya'), 'trinity/instance/araya/inbox')
  assert.equal(t.instanceReport('araya'), 'trinity/instance/araya/report')
  assert.equal(t.instanceStatus('araya'), 'trinity/instance/araya/status')
  assert.equal(t.health('araya'), 'trinity/health/araya')
  assert.equal(t.message('c1', 'all'), 'trinity/message/c1/all')
  assert.equal(t.hubStats, 'trinity/hub/stats')
  assert.equal(t.hubErrors, 'trinity/hub/errors')
  assert.equal(t.supervisorStatus, 'trinity/supervisor/status')
  assert.equal(t.bridgeSync, 'trinity/bridge/sync')
  assert.equal(t.computerStatus('2'), 'trinity/computer/2/status')
  assert.equal(t.computerMessage('2'), 'trinity/computer/2/message')
  assert.equal(t.computerSend('3'), 'trinity/computer/3/send')
  assert.equal(topicsFor('lab/x').taskSubmit, 'lab/x/task/submit')
})

test('parse inverts every builder and rejects what is not in the contract', () => {
  const t = topicsFor('lab/x')
  assert.deepEqual(t.parse(t.taskSubmit), { kind: 'taskSubmit' })
  assert.deepEqual(t.parse(t.taskEvent('t-1')), { kind: 'taskEvent', taskId: 't-1' })
  assert.deepEqual(t.parse(t.taskRespond('t-1')), { kind: 'taskRespond', taskId: 't-1' })
  assert.deepEqual(t.parse(t.instanceReport('b')), { kind: 'instanceReport', instanceId: 'b' })
  assert.deepEqual(t.parse(t.message('a', 'b')), { kind: 'message', from: 'a', to: 'b' })
  assert.deepEqual(t.parse(t.hubErrors), { kind: 'hubErrors' })
  assert.deepEqual(t.parse(t.supervisorStatus), { kind: 'supervisorStatus' })
  assert.deepEqual(t.parse(t.supervisorCommand), { kind: 'supervisorCommand' })
  assert.deepEqual(t.parse(t.bridgeStatus), { kind: 'bridgeStatus' })
  assert.deepEqual(t.parse(t.bridgeSync), { kind: 'bridgeSync' })
  assert.deepEqual(t.parse(t.computerStatus('2')), { kind: 'computerStatus', computer: '2' })
  assert.deepEqual(t.parse(t.computerMessage('C3')), { kind: 'computerMessage', computer: 'C3' })
  assert.deepEqual(t.parse(t.computerSend('2')), { kind: 'computerSend', computer: '2' })
  for (const bad of ['trinity/task/submit', 'lab/x/task', 'lab/x/instance/a/other', 'lab/x/message/a', 'lab/x/task/$bad/event', 'lab/x/hub/stats/extra']) {
    assert.equal(t.parse(bad), undefined, bad)
  }
})

test('ids that would break a topic are refused by the builders', () => {
  const t = topicsFor()
  for (const bad of ['a/b', '+', '#', '', '$SYS', 'x'.repeat(65)]) assert.throws(() => t.instanceInbox(bad), TypeError, bad)
})

test('topicMatches follows MQTT wildcard rules', () => {
  assert.ok(topicMatches('trinity/#', 'trinity/task/submit'))
  assert.ok(topicMatches('trinity/instance/+/report', 'trinity/instance/a/report'))
  assert.ok(!topicMatches('trinity/instance/+/report', 'trinity/instance/a/b/report'))
  assert.ok(!topicMatches('trinity/task', 'trinity/task/submit'))
})

test('no module outside the contract spells a topic string', () => {
  const offenders: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) { walk(path); continue }
      if (!name.endsWith('.ts') || path.endsWith(join('src', 'contract', 'topics.ts'))) continue
      // Comments may name topics (they document them); code may not.
      const text = readFileSync(path, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
      if (/['"`](trinity\/|[^'"`\s]*\/(task|instance|message|health|hub|supervisor|bridge|computer)\/(submit|inbox|report|status|heartbeat|event|stats|errors|command|sync|message|send|\+))/.test(text)) offenders.push(path)
    }
  }
  for (const top of ['src', 'broker', 'bridges', 'web']) {
    try { walk(join(ROOT, top)) } catch { /* folder not there yet */ }
  }
  assert.deepEqual(offenders, [])
})
