/**
 * A client nobody here wrote (issue #10): test/fixtures/paho_instance.py, a
 * paho-mqtt instance written only from docs/topics.md, joins a real hub by
 * its birth with no YAML entry, gets tasks by its capabilities (a type with no
 * route, and a type whose route names an instance that is not there),
 * answers health pings, reports started + completed, and leaves: by its Last
 * Will when killed, by its own offline status on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { ROOT, http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'

const SCRIPT = join(ROOT, 'test/fixtures/paho_instance.py')
/** Debian's python3, where apt puts python3-paho-mqtt (a pyenv or venv python3 on PATH may not have it). */
const PYTHON = '/usr/bin/python3'
const ID = 'paho-scribe'
const { dir, cleanups } = testScope()

interface Paho {
  child: ChildProcess
  events: { event: string; [k: string]: unknown }[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stderr: () => string
}

function startPaho(mqttUrl: string): Paho {
  const child = spawn(PYTHON, [SCRIPT, '--url', mqttUrl, '--id', ID, '--capabilities', 'summarize,general'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const events: Paho['events'] = []
  let buffered = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString()
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) if (line.trim() !== '') events.push(JSON.parse(line) as Paho['events'][number])
  })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited })
  return { child, events, exited, stderr: () => stderr }
}

test('a paho-mqtt instance written from docs/topics.md joins by birth, works by capability, answers pings, and leaves', async () => {
  // The seed's routes, no instances in the config: `general` → c1, which never shows up here.
  // Health checks never say offline here (missesBeforeOffline 1000): offline can only come from the instance's Will or status.
  const hub = await startTestHub(await testConfig(dir.path, { health: { missesBeforeOffline: 1000 } }))
  cleanups.push(() => hub.stop())
  const registry = hub.coordinator.registry
  const events: { id: string; state: string }[] = []
  const watcher = await mqtt.connectAsync(hub.mqttUrl)
  cleanups.push(() => watcher.endAsync())
  watcher.on('message', (_topic, payload) => { const r = JSON.parse(payload.toString()) as TaskRecord; events.push({ id: r.id, state: r.state }) })
  await watcher.subscribeAsync(hub.coordinator.topics.anyTaskEvent, { qos: 0 })

  const paho = startPaho(hub.mqttUrl)
  await waitFor(() => registry.get(ID)?.state === 'online' || paho.child.exitCode !== null, 30_000, `${ID} online`)
  assert.equal(registry.get(ID)?.state, 'online', paho.stderr())
  const joined = registry.get(ID)!
  assert.deepEqual([joined.source, joined.capabilities, joined.name, joined.concurrency], ['joined', ['summarize', 'general'], 'Paho paho-scribe', 2])

  // Health pings answered: several checks, answers timed, still online.
  await waitFor(() => joined.checks >= 3 && joined.responseStats().last !== null && joined.state === 'online', 30_000, 'three health checks with answers, online')

  // summarize has no route: it goes to the capable instance. general's route is c1: paho joins it.
  const submitted: Record<string, string> = {}
  for (const [type, content] of [['summarize', 'three short words'], ['general', 'tidy the docs please']] as const) {
    const response = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type, content })
    assert.equal(response.status, 202, JSON.stringify(response.body))
    submitted[type] = response.body.id
  }
  const done: Record<string, TaskRecord> = {}
  for (const [type, id] of Object.entries(submitted)) {
    await waitFor(async () => {
      done[type] = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body
      return done[type]?.state === 'completed' || done[type]?.state === 'failed' || done[type]?.state === 'dead'
    }, 30_000, `${type} to finish`)
  }
  assert.deepEqual(done['summarize']?.result, { by: ID, type: 'summarize', words: 3 })
  assert.deepEqual(done['summarize']?.assignments.map((a) => [a.targets, a.instance, a.attempts]), [[['summarize'], ID, 1]])
  assert.deepEqual(done['general']?.result, { by: ID, type: 'general', words: 4 })
  assert.deepEqual(done['general']?.assignments.map((a) => [a.targets, a.instance, a.attempts]), [[['c1'], ID, 1]])
  // Its `started` reports were applied: each task went through `running`.
  for (const id of Object.values(submitted)) {
    await waitFor(() => events.some((e) => e.id === id && e.state === 'completed'), 10_000, `the completed event of ${id}`)
    assert.ok(events.some((e) => e.id === id && e.state === 'running'), `${id} was running: ${JSON.stringify(events.filter((e) => e.id === id))}`)
  }
  assert.deepEqual(paho.events.filter((e) => e.event === 'task').map((e) => e['type']).sort(), ['general', 'summarize'])

  // Killed: the broker publishes its Will and the hub sees it offline.
  const firstSession = joined.session ?? 0
  paho.child.kill('SIGKILL')
  await paho.exited
  await waitFor(() => registry.get(ID)?.state === 'offline', 30_000, 'offline by its Will')
  assert.equal(registry.get(ID)?.reason, 'last will or offline status')

  // Back with a new session, then SIGTERM: it says offline itself and exits 0.
  const again = startPaho(hub.mqttUrl)
  await waitFor(() => (registry.get(ID)?.session ?? 0) > firstSession || again.child.exitCode !== null, 30_000, 'the new session')
  const reborn = registry.get(ID)!
  await waitFor(() => reborn.state === 'online', 30_000, 'online again')
  const session = reborn.session
  again.child.kill('SIGTERM')
  assert.deepEqual(await again.exited, { code: 0, signal: null }, again.stderr())
  assert.deepEqual(again.events.at(-1), { event: 'offline', session })
  await waitFor(() => reborn.state === 'offline', 30_000, 'offline by its own status')
  assert.equal(reborn.session, session)
})
