/**
 * The dashboards' actions, clicked in Chromium, go through the HTTP API and
 * their effects come back over the bus: submit a task (a TestInstance does
 * it and the result shows), contact an instance, cancel and retry a task,
 * sync now and restart (with a clear message when the hub refuses).
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { Browser } from 'playwright-core'
import type { Message, TaskRecord } from '../../src/contract/payloads.js'
import { topicsFor } from '../../src/contract/topics.js'
import { http, testScope, waitFor } from '../helpers/hub.js'
import { launchChromium, openPage, startFleet, textOf, waitInPage, type Fleet } from './fixtures.js'

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
  await waitFor(() => events.some((e) => e.id === id && e.state === 'completed'), 5000, 'the completed event')
  const mine = events.filter((e) => e.id === id)
  assert.equal(mine[0]?.state, 'queued')
  assert.equal(mine[0]?.priority, 'high')
  assert.deepEqual(mine.at(-1)?.result, { sum: 19, by: 'analytics' })

  const row = `#task-rows tr[data-task="${id}"]`
  await waitInPage(page, `document.querySelector('${row}')?.dataset.state === 'completed'`)
  assert.match(await textOf(page, row), /analyze_data.*completed.*high.*1\/3.*analytics/s)
  await page.close()
  assert.deepEqual(errors, [])
})

test('contact sends a message from the dashboard to the instance, with the keyboard alone', async () => {
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  await page.click('.card.instance[data-instance="araya"] button.contact')
  assert.equal(await page.evaluate('document.activeElement?.id'), 'contact-message', 'Contact puts the cursor in the message box')
  assert.equal(await page.inputValue('#contact-to'), 'araya')
  await page.keyboard.type('status report, please')
  await page.keyboard.press('Enter')
  const araya = fleet.instances.get('araya')!
  await waitFor(() => araya.messages.some((m) => (m as Message).message === 'status report, please'), 5000, 'araya to get the message')
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
  await waitFor(() => observatory.received.filter((t) => t.id === id).length >= 2 || observatory.received.length >= before + 2, 5000, 'the retried task to reach observatory again')
  await waitInPage(page, `['queued', 'assigned', 'running'].includes(document.querySelector('${row}')?.dataset.state)`)
  assert.match(await textOf(page, '#notice'), new RegExp(`task ${id}: retry accepted`))
  await page.close()
  assert.deepEqual(errors, [])
})

test('sync now and restart say clearly why the hub refused', async () => {
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  // What this hub answers (the git bridge's POST /sync may or may not be merged): the page must say it.
  const sync = await http<{ error?: { code: string; message: string } }>(fleet.hub.httpUrl, 'POST', '/sync')
  // By keyboard: Tab reaches the button, Enter presses it.
  let tabs = 0
  while (await page.evaluate('document.activeElement?.id') !== 'sync-now') {
    assert.ok(++tabs <= 40, 'Tab reaches Sync now')
    await page.keyboard.press('Tab')
  }
  await page.keyboard.press('Enter')
  await waitInPage(page, `document.querySelector('#notice')?.textContent.includes('sync')`)
  const said = await textOf(page, '#notice')
  if (sync.status === 409) assert.match(said, new RegExp(`✖ sync is disabled: ${sync.body.error?.message ?? ''}`))
  else if (sync.status === 404) assert.match(said, /✖ sync is not available on this hub \(it has no POST \/sync\)/)
  else assert.match(said, /● sync round requested/, `POST /sync answered ${sync.status}`)
  assert.equal(await page.getAttribute('#notice', 'data-tone'), sync.status < 300 ? 'ok' : 'bad')

  const restart = await http<{ error?: { message: string } }>(fleet.hub.httpUrl, 'POST', '/instances/builder/restart')
  await page.getByRole('button', { name: 'Start or restart builder' }).click()
  await waitInPage(page, `document.querySelector('#notice')?.textContent.includes('builder')`)
  if (restart.status >= 300) assert.match(await textOf(page, '#notice'), new RegExp(`✖ cannot restart builder: .*${(restart.body.error?.message ?? '').replace(/[/]/g, '\\/')}`))
  else assert.match(await textOf(page, '#notice'), /restart of builder requested/)
  await page.close()
  // The refused requests are answers, not page errors; the browser logs a failed fetch as a resource error only.
  assert.deepEqual(errors.filter((e) => !/Failed to load resource: the server responded with a status of (404|409)/.test(e)), [])
})
