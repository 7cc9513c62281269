/**
 * The dashboards live off the bus: a state change appears within a second, a
 * burst of 1,000 events a second leaves the page responsive and its tables
 * bounded, a page reading far behind a burst stays connected, and losing the
 * broker shows the banner until it is back.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { Browser } from 'playwright-core'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { topicsFor } from '../../src/contract/topics.js'
import type { Hub } from '../../src/hub.js'
import { LIVENESS_FLOOR_MS, startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { TestInstance } from '../helpers/instance.js'
import { count, FLEET, FLEET_HEALTH, launchChromium, openPage, screenshotPath, startFleet, textOf, waitInPage, type Fleet } from './fixtures.js'

const { dir, cleanups } = testScope()
let fleet: Fleet
let browser: Browser
const topics = topicsFor()

before(async () => {
  fleet = await startFleet(dir.path, cleanups)
  browser = await launchChromium(cleanups)
})

test('an instance killed (its Last Will marks it offline) shows as offline on both pages', async () => {
  const command = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  const detail = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  const card = '.card.instance[data-instance="builder"]'
  const row = '#instance-rows tr[data-instance="builder"]'
  await waitInPage(command.page, `document.querySelector('${card}')?.dataset.state === 'online'`)
  await waitInPage(detail.page, `document.querySelector('${row}')?.dataset.state === 'online'`)

  // How soon is a speed budget (npm run bench), not a test's: here only that it is shown.
  fleet.instances.get('builder')!.dropConnection()
  await Promise.all([
    waitInPage(command.page, `document.querySelector('${card}')?.dataset.state === 'offline'`, 60_000),
    waitInPage(detail.page, `document.querySelector('${row}')?.dataset.state === 'offline'`, 60_000),
  ])
  assert.match(await textOf(command.page, card), /✖ offline/, 'the state is written, not only coloured')
  // No supervisor runs it here, so no Start (actions.test.ts: Start where one does).
  assert.equal(await command.page.locator(`${card} button.restart`).isVisible(), false, 'no Start the API would refuse')
  assert.match(await textOf(detail.page, row), /✖ offline/)
  // The log says what the card says, with the coordinator's reason (a log list redraws up to 250 ms after the card).
  await waitInPage(command.page, `/builder is offline \\(last will/.test(document.querySelector('#activity')?.textContent ?? '')`, 30_000)
  assert.equal(await command.page.textContent('#metric-instances'), '5/6')
  await command.page.screenshot({ path: screenshotPath('command-one-offline-1280x800.png') })
  await command.page.close()
  await detail.page.close()
  assert.deepEqual([...command.errors, ...detail.errors], [])
})

function fakeTask(i: number): TaskRecord {
  const now = Date.now()
  const state = i % 4 === 0 ? 'completed' : 'running'
  return {
    id: `burst-${i}`, type: 'analyze_data', content: i, priority: i % 2 === 0 ? 'high' : 'normal', state, strategy: 'least-loaded',
    createdAt: now, updatedAt: now, maxAttempts: 3,
    assignments: [{ targets: ['analytics'], state, instance: 'analytics', attempts: 1, leaseToken: null, leaseExpiresAt: null, notBefore: now, tried: [] }],
  }
}

test('a burst of 1,000 bus events a second for 3 s: the pages stay responsive and bounded', async () => {
  const command = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  const detail = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  const publisher = await mqtt.connectAsync(fleet.hub.mqttUrl)
  cleanups.push(() => publisher.endAsync())

  // 1,000 events a second for at least 3 s, and on until the user's clicks below are handled (at most 20 s).
  const minimum = 3000
  const cap = 20_000
  let sent = 0
  let clicksHandled = false
  const burst = (async () => {
    const startedAt = Date.now()
    while (sent < cap && (sent < minimum || !clicksHandled)) {
      // 10 events every 10 ms; one in twenty a message (which the coordinator also logs).
      for (let k = 0; k < 10; k++, sent++) {
        if (sent % 20 === 19) publisher.publish(topics.message('c1', 'analytics'), JSON.stringify({ id: `m-${sent}`, from: 'c1', to: 'analytics', message: `burst ${sent}`, ts: Date.now() }), { qos: 0 })
        else publisher.publish(topics.taskEvent(`burst-${sent}`), JSON.stringify(fakeTask(sent)), { qos: 0 })
      }
      const due = startedAt + sent
      await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())))
    }
  })()

  // Mid-burst, a user changes the task filter and clicks Contact: both are handled while events pour in.
  await waitFor(() => sent >= 1000, 10_000, 'the burst to be under way')
  await detail.page.selectOption('#task-filter', 'completed')
  await waitInPage(detail.page, `document.querySelector('#task-rows tr') !== null && [...document.querySelectorAll('#task-rows tr')].every((r) => r.dataset.state === 'completed')`, 5000)
  await command.page.click('.card.instance[data-instance="analytics"] button.contact')
  assert.equal(await command.page.evaluate('document.activeElement?.id'), 'contact-message')
  const sentByThen = sent
  clicksHandled = true
  await burst
  assert.ok(sentByThen < cap, `the clicks were handled during the burst (after ${sentByThen} events)`)
  const total = sent

  // Every event reached the page (the broker module counts them), and everything shown stayed bounded.
  for (const page of [command.page, detail.page]) await waitInPage(page, `Number(document.querySelector('#events-seen').textContent) >= ${total}`, 60_000)
  await detail.page.selectOption('#task-filter', 'all')
  await waitInPage(detail.page, `document.querySelector('#task-count')?.textContent === '200 shown of 500 known'`, 30_000)
  assert.equal(await detail.page.locator('#task-rows tr').count(), 200)
  // The newest task that is high priority (even) and running (not a multiple of 4).
  const newestHigh = (total - 2) % 4 === 2 ? total - 2 : total - 4
  // `events-seen` counts health records too, so it can pass before the last task events land: wait for the newest.
  await waitInPage(detail.page, `document.querySelector('#task-rows tr[data-task="burst-${newestHigh}"]') !== null`, 30_000)
  assert.equal(await detail.page.locator(`#task-rows tr[data-task="burst-${newestHigh}"][data-state="running"]`).count(), 1, 'the newest high-priority running task is shown')
  assert.equal(await detail.page.locator(`#task-rows tr[data-task="burst-${total - 600}"]`).count(), 0, 'tasks beyond the newest 500 are forgotten')
  assert.ok(await detail.page.evaluate<number>(count('#message-rows tr')) <= 200)
  assert.ok(await command.page.evaluate<number>(count('#activity li')) <= 200)
  assert.ok(await detail.page.evaluate<number>(count('#activity li')) <= 200)
  await command.page.close()
  await detail.page.close()
  assert.deepEqual([...command.errors, ...detail.errors], [])
})

// A page reading slower than the bus publishes (a phone, a busy laptop, a loaded CI machine):
// MQTT.js took its late PINGRESP, queued behind the burst, for a dead broker, closed the
// connection and lost the QoS 0 events of the gap (web/src/bus.ts).
test('a page reading far behind a burst (its CPU throttled 4×) stays connected and counts every event', async () => {
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 })
  const publisher = await mqtt.connectAsync(fleet.hub.mqttUrl)
  cleanups.push(() => publisher.endAsync())

  // 5,000 messages at up to 1,000 a second; the page is not asked anything meanwhile (each
  // question would wait behind the backlog and slow the burst down).
  const total = 5000
  const startedAt = Date.now()
  for (let sent = 0; sent < total;) {
    for (let k = 0; k < 10; k++, sent++) {
      publisher.publish(topics.message('c1', 'analytics'), JSON.stringify({ id: `m-${sent}`, from: 'c1', to: 'analytics', message: `burst ${sent}`, ts: Date.now() }), { qos: 0 })
    }
    await new Promise((r) => setTimeout(r, Math.max(0, startedAt + sent - Date.now())))
  }

  // The page catches up; the newest message is the last one sent (the table keeps the newest).
  await waitInPage(page, `document.querySelector('#message-rows tr')?.textContent?.includes('burst ${total - 1}') === true`, 240_000)
  const seen = Number(await page.textContent('#events-seen'))
  const busLines = (await page.locator('#activity li').allTextContents()).filter((line) => /bus (dis)?connected/.test(line))
  assert.deepEqual(busLines.filter((line) => /disconnected/.test(line)), [], `the page never lost the bus (saw ${seen} events)`)
  assert.ok(seen >= total, `every event counted: ${seen} of at least ${total}`)
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 })
  await page.close()
  assert.deepEqual(errors, [])
})

test('the broker going away shows the disconnected banner; its return clears it and the page is live again', async () => {
  const { page } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  assert.equal(await page.locator('#bus-banner').isVisible(), false)
  const port = Number(new URL(fleet.hub.httpUrl).port)
  await fleet.hub.stop()
  await page.locator('#bus-banner').waitFor({ state: 'visible', timeout: LIVENESS_FLOOR_MS })
  assert.match(await textOf(page, '#bus-banner'), /DISCONNECTED/)
  assert.match(await textOf(page, '#bus-state'), /✖ bus disconnected/)
  await page.screenshot({ path: screenshotPath('command-disconnected-1280x800.png') })

  // The same hub (data dir and port) comes back.
  let hub: Hub | undefined
  await waitFor(async () => {
    hub = await startTestHub(await testConfig(dir.path, {
      hub: { port }, health: FLEET_HEALTH, instances: FLEET.map((i) => ({ id: i.id, name: i.name, role: i.id, capabilities: i.capabilities })),
    })).catch(() => undefined)
    return hub !== undefined
  }, 30_000, `the hub to bind port ${port} again`)
  cleanups.push(() => hub?.stop())
  await page.locator('#bus-banner').waitFor({ state: 'hidden', timeout: LIVENESS_FLOOR_MS })
  assert.match(await textOf(page, '#bus-state'), /● bus connected/)

  // Subscribed again: an instance that joins the new broker shows up.
  assert.equal(await page.locator('.card.instance[data-instance="scout"]').count(), 0)
  const scout = await TestInstance.start({ url: hub!.mqttUrl, id: 'scout', capabilities: ['general'] })
  cleanups.push(() => scout.close())
  await waitInPage(page, `document.querySelector('.card.instance[data-instance="scout"]')?.dataset.state === 'online'`, 30_000)
  await page.close()
})
