/**
 * A page that reads slower than the bus publishes (a phone, a busy laptop, a
 * loaded CI machine) stays connected and sees every event, however far behind
 * its socket it reads. MQTT.js took such a page's late PINGRESP, queued behind
 * the burst, for a dead broker, closed the connection and lost the QoS 0
 * events of the gap (web/src/bus.ts).
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { Browser } from 'playwright-core'
import { topicsFor } from '../../src/contract/topics.js'
import { testScope } from '../helpers/hub.js'
import { launchChromium, openPage, startFleet, waitInPage, type Fleet } from './fixtures.js'

const { dir, cleanups } = testScope()
let fleet: Fleet
let browser: Browser
const topics = topicsFor()

before(async () => {
  fleet = await startFleet(dir.path, cleanups)
  browser = await launchChromium(cleanups)
})

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
