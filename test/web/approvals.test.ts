/**
 * The approval queue on both dashboards (issue #11, human in the loop): an
 * agent (the SDK, over real MQTT) asks; Chromium shows the question in the
 * queue, live from the task events on the detail view, from the HTTP fill on
 * Central Command opened afterwards; clicking a choice, or typing an answer,
 * POSTs /tasks/:id/respond and the task completes (seen in GET /tasks/:id),
 * and its card leaves the queue.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser } from 'playwright-core'
import { connectAgent } from '../../src/agent/index.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import type { Hub } from '../../src/hub.js'
import { http, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { count, launchChromium, openPage, screenshotPath, textOf, waitInPage } from './fixtures.js'

const { dir, cleanups } = testScope()
let hub: Hub
let browser: Browser

before(async () => {
  hub = await startTestHub(await testConfig(dir.path, { routes: { approve_deploy: { targets: ['gatekeeper'] } }, tasks: { inputTimeout: null } }))
  cleanups.push(() => hub.stop())
  const agent = await connectAgent({
    id: 'gatekeeper', url: hub.mqttUrl, handleSignals: false,
    handlers: {
      approve_deploy: async (content, ctx) => {
        const { question, choices } = content as { question: string; choices?: string[] }
        return { answer: await ctx.ask(question, choices === undefined ? {} : { choices }), attempt: ctx.attempt }
      },
    },
  })
  cleanups.push(() => agent.drain())
  await waitFor(() => hub.coordinator.registry.get('gatekeeper')?.state === 'online', 30_000, 'gatekeeper online')
  browser = await launchChromium(cleanups)
})

async function submit(content: unknown): Promise<string> {
  const { status, body } = await http<{ id: string }>(hub.httpUrl, 'POST', '/task', { type: 'approve_deploy', content })
  assert.equal(status, 202)
  return body.id
}

async function finished(id: string): Promise<TaskRecord> {
  let task: TaskRecord | undefined
  await waitFor(async () => ['completed', 'failed', 'dead'].includes((task = (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body).state), 30_000, `${id} finished`)
  return task as TaskRecord
}

test('detail view: the question arrives live in the approval queue; clicking a choice completes the task', async () => {
  const { page, errors } = await openPage(browser, `${hub.httpUrl}/dashboard`)
  assert.equal(await page.locator('#approvals-empty').isVisible(), true)
  const id = await submit({ question: 'Deploy build 42 to production?', choices: ['approve', 'reject'] })
  const card = `#approvals article[data-task="${id}"]`
  await waitInPage(page, `${count(card)} === 1`)
  assert.equal(await textOf(page, `${card} .question`), 'Deploy build 42 to production?')
  assert.match(await textOf(page, `${card} .meta`), /asked by gatekeeper/)
  assert.deepEqual(await page.locator(`${card} button.choice`).allTextContents(), ['approve', 'reject'])
  assert.equal(await page.locator('#approvals-empty').isVisible(), false)
  // The task table says it too, in the state's own words.
  await waitInPage(page, `document.querySelector('#task-rows tr[data-task="${id}"]')?.dataset.state === 'needs_input'`)
  await page.screenshot({ path: screenshotPath('approvals-dashboard.png'), fullPage: true })

  await page.click(`${card} button[data-choice="approve"]`)
  const done = await finished(id)
  assert.equal(done.state, 'completed')
  assert.deepEqual(done.result, { answer: 'approve', attempt: 1 })
  await waitInPage(page, `${count(card)} === 0`)
  assert.match(await textOf(page, '#notice'), new RegExp(`task ${id}: answer sent`))
  assert.deepEqual(errors, [])
})

test('Central Command opened while a task waits shows it from the fill; a typed answer completes it', async () => {
  const id = await submit({ question: 'Which release notes should go out?' })
  await waitFor(async () => (await http<TaskRecord>(hub.httpUrl, 'GET', `/tasks/${id}`)).body.state === 'needs_input', 30_000, 'needs_input')
  const { page, errors } = await openPage(browser, `${hub.httpUrl}/command`)
  const card = `#approvals article[data-task="${id}"]`
  await waitInPage(page, `${count(card)} === 1`)
  assert.equal(await textOf(page, `${card} .question`), 'Which release notes should go out?')
  assert.equal(await page.locator(`${card} button.choice`).count(), 0, 'no choices asked, none offered')
  await page.screenshot({ path: screenshotPath('approvals-command.png'), fullPage: true })

  await page.fill(`${card} input[name="answer"]`, 'the short ones, please')
  await page.click(`${card} button[type="submit"]`)
  const done = await finished(id)
  assert.deepEqual([done.state, done.result], ['completed', { answer: 'the short ones, please', attempt: 1 }])
  await waitInPage(page, `${count(card)} === 0`)
  assert.deepEqual(errors, [])
})
