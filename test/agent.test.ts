/** The agent SDK against a real hub: handlers, progress, concurrency, messages, drain. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NonRetryableError, connectAgent } from '../src/agent/index.js'
import { topicsFor } from '../src/contract/topics.js'
import mqtt from 'mqtt'
import { http, waitFor } from './helpers/hub.js'
import { agentHub } from './helpers/agent-hub.js'

const fixture = agentHub({ early_job: { targets: ['early-bird'] }, flaky_fix: { targets: ['thrower'] }, strict_job: { targets: ['strict'] } })
const { agents, finished } = fixture

test('a worker joins in a few lines; results, progress and failures reach the hub', async () => {
  const agent = await connectAgent({ id: 'c1', url: fixture.hub.mqttUrl, handleSignals: false, concurrency: 2 })
  agents.push(agent)
  agent.handle('general', async (content, ctx) => {
    ctx.progress({ step: 'thinking' })
    if (content === 'explode') throw new Error('boom')
    return { echo: content, attempt: ctx.attempt }
  })
  // handle() announces the new capability with a fresh birth.
  await waitFor(() => fixture.hub.coordinator.registry.get('c1')?.capabilities.includes('general') === true, 30_000, 'c1 online with its capability')
  assert.equal(fixture.hub.coordinator.registry.get('c1')?.state, 'online')
  const ok = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'general', content: 'hi' })
  const done = await finished(ok.body.id)
  assert.equal(done.state, 'completed')
  assert.deepEqual(done.result, { echo: 'hi', attempt: 1 })
  const bad = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'general', content: 'explode' })
  const failed = await finished(bad.body.id)
  assert.equal(failed.state, 'failed')
  assert.match(failed.error ?? '', /boom/)
  assert.equal(failed.assignments[0]?.attempts, 3)
})

test('a handler that throws NonRetryableError fails its task at once: one attempt, no retry', async () => {
  const agent = await connectAgent({ id: 'strict', url: fixture.hub.mqttUrl, handleSignals: false, handlers: { strict_job: async () => { throw new NonRetryableError('content is not a number') } } })
  agents.push(agent)
  await waitFor(() => fixture.hub.coordinator.registry.get('strict')?.state === 'online', 30_000, 'strict online')
  const submitted = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'strict_job', content: 'x' })
  const failed = await finished(submitted.body.id)
  assert.equal(failed.state, 'failed')
  assert.equal(failed.assignments[0]?.attempts, 1)
  assert.match(failed.error ?? '', /content is not a number/)
})

test('the concurrency limit holds, and messages go both ways', async () => {
  let running = 0
  let peak = 0
  const agent = await connectAgent({ id: 'analytics', url: fixture.hub.mqttUrl, handleSignals: false, concurrency: 2 })
  agents.push(agent)
  agent.handle('analyze_data', async (content) => {
    running++
    peak = Math.max(peak, running)
    await new Promise((r) => setTimeout(r, 50))
    running--
    return content
  })
  const received: string[] = []
  agent.onMessage((m) => received.push(m.message))
  await waitFor(() => fixture.hub.coordinator.registry.get('analytics')?.state === 'online', 30_000, 'analytics online')
  const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: i })))
  for (const r of ids) assert.equal((await finished(r.body.id)).state, 'completed')
  assert.equal(peak, 2)
  await http(fixture.hub.httpUrl, 'POST', '/send', { from: 'c1', to: 'analytics', message: 'hello agent' })
  await waitFor(() => received.includes('hello agent'), 30_000, 'message to the agent')
  await agent.send('c1', 'hello hub')
  await waitFor(async () => (await http<{ messages: { message: string }[] }>(fixture.hub.httpUrl, 'GET', '/messages?from=analytics')).body.messages.some((m) => m.message === 'hello hub'), 30_000, 'message from the agent')
})

test('drain finishes the running task, then the hub sees the agent offline', async () => {
  const agent = await connectAgent({ id: 'observatory', url: fixture.hub.mqttUrl, handleSignals: false })
  let release: (value: string) => void = () => undefined
  agent.handle('monitor_system', () => new Promise<string>((resolve) => { release = resolve }))
  await waitFor(() => fixture.hub.coordinator.registry.get('observatory')?.state === 'online', 30_000, 'observatory online')
  const { body } = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'monitor_system', content: null })
  await waitFor(() => agent.running === 1, 30_000, 'task running')
  const drained = agent.drain()
  await waitFor(() => fixture.hub.coordinator.registry.get('observatory')?.draining === true, 30_000, 'hub sees draining')
  // Draining takes no new work: a second task waits in the queue.
  const second = await http<{ id: string; assigned: string[] }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'monitor_system', content: 'later' })
  assert.deepEqual(second.body.assigned, [])
  release('finished during drain')
  await drained
  const done = await finished(body.id)
  assert.equal(done.result, 'finished during drain')
  await waitFor(() => fixture.hub.coordinator.registry.get('observatory')?.state === 'offline', 30_000, 'offline after drain')
})

test('work for a declared capability that arrives before its handler is held, not failed', async () => {
  // Queued first, so the hub sends it the moment the birth arrives, before handle() below.
  const { body } = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'early_job', content: 'early' })
  const agent = await connectAgent({ id: 'early-bird', url: fixture.hub.mqttUrl, handleSignals: false, capabilities: ['early_job'] })
  agents.push(agent)
  await waitFor(() => (fixture.hub.coordinator.scheduler.get(body.id)?.state ?? '') === 'assigned' || fixture.hub.coordinator.scheduler.get(body.id)?.state === 'running', 30_000, 'sent to the agent')
  await new Promise((r) => setTimeout(r, 200))
  agent.handle('early_job', async (content) => ({ deployed: content }))
  const task = await finished(body.id)
  assert.deepEqual([task.state, task.assignments[0]?.attempts, task.result], ['completed', 1, { deployed: 'early' }])
})

test('a handler that throws at once leaves nothing behind: the retry of the same task runs', async () => {
  const agent = await connectAgent({ id: 'thrower', url: fixture.hub.mqttUrl, handleSignals: false })
  agents.push(agent)
  let calls = 0
  agent.handle('flaky_fix', (_content, ctx) => {
    calls++
    if (ctx.attempt === 1) throw new Error('not yet')
    return { fixed: true, attempt: ctx.attempt }
  })
  await waitFor(() => fixture.hub.coordinator.registry.get('thrower')?.capabilities.includes('flaky_fix') === true, 30_000, 'thrower online')
  const { body } = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/task', { type: 'flaky_fix', content: 'x' })
  const task = await finished(body.id)
  assert.deepEqual([task.state, task.result, calls], ['completed', { fixed: true, attempt: 2 }, 2])
})

test('an offline status for a live agent\'s session (a restarted broker\'s late Will) is answered with a fresh birth', async () => {
  const agent = await connectAgent({ id: 'phoenix', url: fixture.hub.mqttUrl, handleSignals: false })
  agents.push(agent)
  agent.handle('general', () => 'ok')
  await waitFor(() => fixture.hub.coordinator.registry.get('phoenix')?.state === 'online', 30_000, 'phoenix online')
  const session = fixture.hub.coordinator.registry.get('phoenix')?.session
  // The hub's health verdicts, as published: offline and back can take less than a poll of the registry.
  const verdicts: string[] = []
  const watcher = await mqtt.connectAsync(fixture.hub.mqttUrl)
  watcher.on('message', (_t, payload) => { if (payload.length > 0) verdicts.push((JSON.parse(payload.toString()) as { state: string }).state) })
  await watcher.subscribeAsync(topicsFor().health('phoenix'), { qos: 0 })
  const other = await mqtt.connectAsync(fixture.hub.mqttUrl)
  await other.publishAsync(topicsFor().instanceStatus('phoenix'), JSON.stringify({ state: 'offline', session }), { qos: 1, retain: true })
  await other.endAsync()
  await waitFor(() => verdicts.includes('offline'), 30_000, 'the Will seen')
  await waitFor(() => verdicts.lastIndexOf('online') > verdicts.indexOf('offline') && fixture.hub.coordinator.registry.get('phoenix')?.state === 'online', 30_000, 'reborn')
  await watcher.endAsync()
  assert.equal(fixture.hub.coordinator.registry.get('phoenix')?.session, session)
})

test('handlers given to connectAgent are in the very first birth', async () => {
  const births: { state: string; capabilities?: string[] }[] = []
  const watcher = await mqtt.connectAsync(fixture.hub.mqttUrl, { reconnectPeriod: 0 })
  watcher.on('message', (_t, payload) => births.push(JSON.parse(payload.toString('utf8')) as (typeof births)[number]))
  await watcher.subscribeAsync(topicsFor().instanceStatus('herald'), { qos: 1 })
  try {
    const agent = await connectAgent({ id: 'herald', url: fixture.hub.mqttUrl, handleSignals: false, handlers: { general: (content) => ({ heard: content }) } })
    agents.push(agent)
    await waitFor(() => births.length > 0, 30_000, 'the birth')
    assert.deepEqual(births[0], { ...births[0], state: 'online', capabilities: ['general'] })
    await waitFor(() => fixture.hub.coordinator.registry.get('herald')?.capabilities.includes('general') === true, 30_000, 'herald online')
  } finally {
    await watcher.endAsync()
  }
})

test('messages that arrive before onMessage() is called are held for the first listener', async () => {
  const first = await connectAgent({ id: 'postbox', url: fixture.hub.mqttUrl, handleSignals: false })
  await waitFor(() => fixture.hub.coordinator.registry.get('postbox')?.state === 'online', 30_000, 'postbox online')
  await first.drain()
  await waitFor(() => fixture.hub.coordinator.registry.get('postbox')?.state === 'offline', 30_000, 'postbox offline')
  // Queued in postbox's persistent session while it is away: delivered right behind the CONNACK.
  const sent = await http<{ id: string }>(fixture.hub.httpUrl, 'POST', '/send', { from: 'c1', to: 'postbox', message: 'while you were out' })
  assert.equal(sent.status, 202)
  const agent = await connectAgent({ id: 'postbox', url: fixture.hub.mqttUrl, handleSignals: false })
  agents.push(agent)
  await waitFor(() => fixture.hub.coordinator.registry.get('postbox')?.state === 'online', 30_000, 'postbox back')
  const received: string[] = []
  agent.onMessage((m) => received.push(m.message))
  await waitFor(() => received.length > 0, 30_000, 'the held message')
  assert.deepEqual(received, ['while you were out'])
})
