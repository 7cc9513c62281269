/**
 * The dashboards' actions, clicked in Chromium, go through the HTTP API and
 * their effects come back over the bus: submit a task (a TestInstance does
 * it and the result shows), contact an instance, cancel and retry a task,
 * and Start / Restart, offered only where the API would accept it (Sync now
 * only where sync is on: see sync.test.ts), and task rows that say what each
 * task is.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { Browser } from 'playwright-core'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import type { Message } from '../../src/contract/payloads/message.js'
import { topicsFor } from '../../src/contract/topics.js'
import { http, LIVENESS_FLOOR_MS, testScope, waitFor } from '../helpers/hub.js'
import { launchChromium, openPage, screenshotPath, startFleet, textOf, waitInPage, type Fleet } from './fixtures.js'

const { dir, cleanups } = testScope()
let fleet: Fleet
let browser: Browser
const topics = topicsFor()

before(async () => {
  fleet = await startFleet(dir.path, cleanups, {
    handlers: {
      analytics: (task) => ({ sum: String(task.content).split(' ').map(Number).reduce((a, b) => a + b, 0), by: 'analytics' }),
    },
    // Observatory takes its tasks and never answers: a task to cancel.
    manual: ['observatory'],
  })
  browser = await launchChromium(cleanups)
})

/** Every task event on the bus, in order. */
async function watchTaskEvents(): Promise<TaskRecord[]> {
  const events: TaskRecord[] = []
  const client = await mqtt.connectAsync(fleet.hub.mqttUrl)
  cleanups.push(() => client.endAsync())
  client.on('message', (_topic, payload) => events.push(JSON.parse(payload.toString()) as TaskRecord))
  await client.subscribeAsync(topics.anyTaskEvent, { qos: 1 })
  return events
}

test('a task submitted from the page is done by an instance, and its result appears', async () => {
  const events = await watchTaskEvents()
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  await page.fill('#task-type', 'analyze_data')
  await page.selectOption('#task-priority', 'high')
  await page.fill('#task-content', '1 2 3 5 8')
  await page.click('#task-form button[type="submit"]')

  await waitInPage(page, `document.querySelector('#task-outcome')?.dataset.state === 'completed'`)
  const outcome = await textOf(page, '#task-outcome')
  assert.match(outcome, /● completed — result: \{"sum":19,"by":"analytics"\}/)
  const id = /task (\S+):/.exec(outcome)?.[1] ?? ''
  assert.match(await textOf(page, '#notice'), new RegExp(`task ${id} submitted \\(analyze_data, high\\)`))

  // The page's submission went through the coordinator: its events are on the bus.
  await waitFor(() => events.some((e) => e.id === id && e.state === 'completed'), 30_000, 'the completed event')
  const mine = events.filter((e) => e.id === id)
  assert.equal(mine[0]?.state, 'queued')
  assert.equal(mine[0]?.priority, 'high')
  assert.deepEqual(mine.at(-1)?.result, { sum: 19, by: 'analytics' })

  const row = `#task-rows tr[data-task="${id}"]`
  await waitInPage(page, `document.querySelector('${row}')?.dataset.state === 'completed'`)
  assert.match(await textOf(page, row), /analyze_data.*completed.*high.*1\/3.*analytics/s)
  assert.equal(await textOf(page, `${row} td:nth-child(8)`), '1 2 3 5 8', 'the row says what the task is')
  assert.equal(await textOf(page, `${row} td:nth-child(9)`), '{"sum":19,"by":"analytics"}')
  // So does the activity log.
  await waitInPage(page, `document.querySelector('#activity')?.textContent.includes('task ${id} (analyze_data: 1 2 3 5 8)')`, 30_000)
  await page.close()
  assert.deepEqual(errors, [])
})

test('task rows show the content shortened, from summaries and from full records, and never lose it', async () => {
  const detail = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  const command = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  // A long task through the API: the row shows its first 160 characters, the tooltip its size.
  const long = `please analyse ${'the numbers 1 2 3 5 8 13 21 '.repeat(200)}`
  const submitted = await http<{ id: string }>(fleet.hub.httpUrl, 'POST', '/task', { type: 'analyze_data', content: long })
  assert.equal(submitted.status, 202)
  const row = `#task-rows tr[data-task="${submitted.body.id}"]`
  await waitInPage(detail.page, `document.querySelector('${row}')?.dataset.state === 'completed'`, 30_000)
  const shown = await textOf(detail.page, `${row} td:nth-child(8)`)
  assert.equal(shown, `${long.slice(0, 159)}…`, 'the content, cut to 160 characters')
  const kib = (Buffer.byteLength(long) / 1024).toFixed(1)
  assert.equal(await detail.page.getAttribute(`${row} td:nth-child(8)`, 'title'), `${shown} (${kib} KiB in all)`)

  // Straight on the bus, as the hub publishes them: an admission event with the content, later events without it.
  const client = await mqtt.connectAsync(fleet.hub.mqttUrl)
  cleanups.push(() => client.endAsync())
  const now = Date.now()
  const leg = { targets: ['analytics'], state: 'running', instance: 'analytics', attempts: 1, leaseToken: 'l', leaseExpiresAt: now + 60_000, notBefore: now, tried: [] }
  const base = { type: 'analyze_data', priority: 'normal', strategy: 'least-loaded', createdAt: now, maxAttempts: 3 }
  const publish = (id: string, event: Record<string, unknown>): Promise<unknown> => client.publishAsync(topics.taskEvent(id), JSON.stringify({ id, ...base, ...event }), { qos: 1 })
  // An older hub: full records (TaskRecord: the content every time), no previews: the page derives them.
  await publish('old-record', { state: 'queued', updatedAt: now, content: { numbers: [4, 6] }, assignments: [{ ...leg, state: 'queued', instance: null }] })
  await publish('old-record', { state: 'completed', updatedAt: now + 2, content: { numbers: [4, 6] }, assignments: [{ ...leg, state: 'completed', output: 'x'.repeat(10_000) }], result: { mean: 5 } })
  // A summary: a preview and a size, the full content only on the admission event.
  await publish('summary', { state: 'queued', updatedAt: now, contentPreview: 'count the visitors', contentBytes: 18, content: 'count the visitors', assignments: [] })
  await publish('summary', { state: 'running', updatedAt: now + 1, contentPreview: 'count the visitors', contentBytes: 18, assignments: [leg] })
  await publish('summary', { state: 'completed', updatedAt: now + 2, contentPreview: 'count the visitors', contentBytes: 18, resultPreview: '{"visitors":7}', assignments: [{ ...leg, state: 'completed' }] })
  // A summary that arrives without its admission event (the page opened late): the preview alone.
  await publish('late', { state: 'running', updatedAt: now + 1, contentPreview: 'late but known', contentBytes: 14, assignments: [leg] })
  for (const [id, content, result] of [['old-record', '{"numbers":[4,6]}', '{"mean":5}'], ['summary', 'count the visitors', '{"visitors":7}'], ['late', 'late but known', '—']] as const) {
    const r = `#task-rows tr[data-task="${id}"]`
    await waitInPage(detail.page, `document.querySelector('${r}')?.dataset.state === '${id === 'late' ? 'running' : 'completed'}'`, 30_000)
    assert.equal(await textOf(detail.page, `${r} td:nth-child(8)`), content, `${id}: content kept`)
    assert.equal(await textOf(detail.page, `${r} td:nth-child(9)`), result, `${id}: result`)
  }
  // Central Command lists tasks in its log: with what they are.
  await waitInPage(command.page, `document.querySelector('#activity')?.textContent.includes('task summary (analyze_data: count the visitors) running → completed')`, 30_000)
  await detail.page.close()
  await command.page.close()
  assert.deepEqual([...detail.errors, ...command.errors], [])
})

test('contact sends a message from the dashboard to the instance, with the keyboard alone', async () => {
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  await page.click('.card.instance[data-instance="araya"] button.contact')
  assert.equal(await page.evaluate('document.activeElement?.id'), 'contact-message', 'Contact puts the cursor in the message box')
  assert.equal(await page.inputValue('#contact-to'), 'araya')
  await page.keyboard.type('status report, please')
  await page.keyboard.press('Enter')
  const araya = fleet.instances.get('araya')!
  await waitFor(() => araya.messages.some((m) => (m as Message).message === 'status report, please'), 30_000, 'araya to get the message')
  const got = araya.messages.find((m) => (m as Message).message === 'status report, please') as Message
  assert.equal(got.from, 'dashboard')
  await waitInPage(page, `document.querySelector('#notice')?.textContent.includes('message sent to araya')`)
  await page.close()
  assert.deepEqual(errors, [])
})

test('cancel and retry a task from the task table', async () => {
  const observatory = fleet.instances.get('observatory')!
  const before = observatory.received.length
  const submitted = await http<{ id: string }>(fleet.hub.httpUrl, 'POST', '/task', { type: 'monitor_system', content: 'watch', priority: 'low' })
  assert.equal(submitted.status, 202)
  const id = submitted.body.id
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  const row = `#task-rows tr[data-task="${id}"]`
  await waitInPage(page, `document.querySelector('${row}')?.dataset.state === 'running' || document.querySelector('${row}')?.dataset.state === 'assigned'`)
  assert.equal(await page.locator(`${row} button.retry`).isVisible(), false, 'no retry while it runs')

  await page.getByRole('button', { name: `Cancel task ${id}` }).click()
  await waitInPage(page, `document.querySelector('${row}')?.dataset.state === 'cancelled'`)
  assert.equal((await http<TaskRecord>(fleet.hub.httpUrl, 'GET', `/tasks/${id}`)).body.state, 'cancelled')

  await page.getByRole('button', { name: `Retry task ${id}` }).click()
  await waitFor(() => observatory.received.filter((t) => t.id === id).length >= 2 || observatory.received.length >= before + 2, 30_000, 'the retried task to reach observatory again')
  await waitInPage(page, `['queued', 'assigned', 'running'].includes(document.querySelector('${row}')?.dataset.state)`)
  assert.match(await textOf(page, '#notice'), new RegExp(`task ${id}: retry accepted`))
  await page.close()
  assert.deepEqual(errors, [])
})

test('sync is off on this hub: the page offers no Sync now and says why', async () => {
  const html = await (await fetch(`${fleet.hub.httpUrl}/command`)).text()
  assert.match(html, /<meta name="trinity-sync" content="off">/)
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  // The API would refuse the click: POST /sync is 409 while sync is off.
  assert.equal((await http(fleet.hub.httpUrl, 'POST', '/sync')).status, 409)
  assert.equal(await page.locator('#sync-now').isVisible(), false, 'no Sync now button')
  assert.equal(await page.getByRole('button', { name: /sync now/i }).count(), 0, 'not even for a screen reader')
  assert.match(await textOf(page, '#sync-off'), /sync between computers is off.*sync\.enabled: false/i)
  assert.equal(await page.locator('#sync-off').isVisible(), true)
  await page.close()
  assert.deepEqual(errors, [])
})

test('Start / Restart is offered only for instances a running supervisor runs, and then it works', async () => {
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  const card = (id: string): string => `.card.instance[data-instance="${id}"]`
  await waitInPage(page, `document.querySelector('${card('builder')}')?.dataset.state === 'online'`)
  // No supervisor on the bus: the API refuses every restart, so the page offers none and says why.
  assert.equal((await http(fleet.hub.httpUrl, 'POST', '/instances/builder/restart')).status, 409)
  assert.equal(await page.locator(`${card('builder')} button.restart`).isVisible(), false)
  assert.equal(await page.locator(`${card('builder')} .unsupervised`).isVisible(), true)
  assert.match(await textOf(page, `${card('builder')} .unsupervised`), /not supervised/)

  // A supervisor runs builder (and analytics, in a crash loop), not araya.
  const client = await mqtt.connectAsync(fleet.hub.mqttUrl)
  const commands: unknown[] = []
  client.on('message', (_topic, payload) => commands.push(JSON.parse(payload.toString())))
  await client.subscribeAsync(topics.supervisorCommand, { qos: 1 })
  cleanups.push(async () => {
    await client.publishAsync(topics.supervisorStatus, '', { qos: 1, retain: true })
    await client.endAsync()
  })
  const now = Date.now()
  const child = (instance: string, state: string, reason: string | null): unknown => ({
    name: instance, kind: 'instance', instance, pid: state === 'running' ? 4300 : null, state, restarts: state === 'running' ? 0 : 5,
    startedAt: now - 1000, readyAt: now - 900, lastExit: null, nextRestartAt: null, reason,
  })
  await client.publishAsync(topics.supervisorStatus, JSON.stringify({
    state: 'running', pid: 4242, startedAt: now - 60_000, at: now,
    children: [child('builder', 'running', null), child('analytics', 'error', 'crash loop: 6 exits within 120000 ms')],
  }), { qos: 1, retain: true })
  await page.locator(`${card('builder')} button.restart`).waitFor({ state: 'visible', timeout: LIVENESS_FLOOR_MS })
  assert.equal(await page.textContent(`${card('builder')} button.restart`), 'Restart')
  assert.equal(await page.locator(`${card('builder')} .unsupervised`).isVisible(), false)
  await waitInPage(page, `document.querySelector('${card('analytics')}')?.dataset.state === 'error'`, 30_000)
  assert.equal(await page.textContent(`${card('analytics')} button.restart`), 'Start', 'a crash-looped instance offers Start')
  assert.equal(await page.locator(`${card('araya')} button.restart`).isVisible(), false, 'araya is not supervised')
  // The log says what the card says (the log redraws a moment later than the cards).
  await waitInPage(page, `document.querySelector('#activity')?.textContent.includes('analytics is error (crash loop: 6 exits')`, 30_000)

  await page.getByRole('button', { name: 'Start or restart builder' }).click()
  await waitInPage(page, `document.querySelector('#notice')?.textContent.includes('restart of builder requested')`, 30_000)
  await waitFor(() => commands.some((c) => (c as { target?: string }).target === 'builder'), 30_000, 'the restart command on the bus')
  assert.equal(await page.getAttribute('#notice', 'data-tone'), 'ok')
  await page.screenshot({ path: screenshotPath('command-supervised-1280x800.png') })

  // The supervisor goes away: the buttons go with it.
  await client.publishAsync(topics.supervisorStatus, JSON.stringify({ state: 'stopped', pid: 4242, startedAt: now - 60_000, at: Date.now(), children: [] }), { qos: 1, retain: true })
  await page.locator(`${card('builder')} button.restart`).waitFor({ state: 'hidden', timeout: LIVENESS_FLOOR_MS })
  await page.close()
  assert.deepEqual(errors.filter((e) => !/Failed to load resource: the server responded with a status of 409/.test(e)), [])
})
