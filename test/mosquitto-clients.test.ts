/**
 * Any MQTT client can watch and drive Trinity: a real `mosquitto_sub -t
 * 'trinity/#' -v` sees a task's whole life, and `mosquitto_pub` submits one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import type { TaskRecord } from '../src/contract/payloads/task.js'
import { TestInstance } from './helpers/instance.js'
import { startTestHub, testConfig, waitFor, testScope } from './helpers/hub.js'

const { dir, cleanups } = testScope()

test('mosquitto_sub sees the whole life of a task that mosquitto_pub submitted', async () => {
  const hub = await startTestHub(await testConfig(dir.path))
  cleanups.push(() => hub.stop())
  const port = new URL(hub.mqttUrl).port
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1' })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online')

  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-t', 'trinity/#', '-v'], { stdio: ['ignore', 'pipe', 'inherit'] })
  cleanups.push(() => sub.kill('SIGKILL'))
  let seen = ''
  sub.stdout.on('data', (d: Buffer) => { seen += d.toString() })
  // Retained state arrives first: the hub's stats and c1's birth.
  await waitFor(() => seen.includes('trinity/hub/stats') && seen.includes('trinity/instance/c1/status'), 5000, 'retained state')

  // Async: the hub runs in this process and must keep serving while mosquitto_pub waits for its PUBACK.
  await promisify(execFile)('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-q', '1', '-t', 'trinity/task/submit',
    '-m', JSON.stringify({ id: 'from-mosquitto-pub', type: 'general', content: 'hello from mosquitto_pub' })], { timeout: 10_000 })

  const eventTopic = 'trinity/task/from-mosquitto-pub/event'
  await waitFor(() => seen.split('\n').some((l) => l.startsWith(`${eventTopic} `) && l.includes('"state":"completed"')), 5000, 'completed event')
  const lines = seen.split('\n')
  const states = lines.filter((l) => l.startsWith(`${eventTopic} `)).map((l) => (JSON.parse(l.slice(eventTopic.length + 1)) as TaskRecord).state)
  assert.deepEqual(states, ['queued', 'assigned', 'running', 'completed'])
  assert.ok(lines.some((l) => l.startsWith('trinity/task/submit ')), 'the submission itself')
  assert.ok(lines.some((l) => l.startsWith('trinity/instance/c1/inbox ') && l.includes('from-mosquitto-pub')), 'the assignment in the inbox')
  const reports = lines.filter((l) => l.startsWith('trinity/instance/c1/report ')).map((l) => JSON.parse(l.slice('trinity/instance/c1/report '.length)) as { state: string })
  assert.deepEqual(reports.map((r) => r.state), ['started', 'completed'])
})
