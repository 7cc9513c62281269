/**
 * "Sync now" on a hub whose git bridge runs (sync.enabled: true, so the page
 * offers it; actions.test.ts shows a hub with sync off): the click is a POST /sync, the
 * bridge runs a round against a real bare repository, and the page shows the
 * bridge's state and this computer's card from the bus.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { startBridge, type Bridge } from '../../bridges/git/bridge.js'
import { testScope, waitFor } from '../helpers/hub.js'
import { bareRepo, syncSection } from '../bridge/helpers.js'
import { launchChromium, openPage, startFleet, textOf, waitInPage, type Fleet } from './fixtures.js'

const { dir, cleanups } = testScope()
let fleet: Fleet
let bridge: Bridge
let browser: Browser

before(async () => {
  const sync = syncSection({ computer: '1', peers: ['2'], remote: bareRepo(dir.path), workdir: join(dir.path, 'sync'), interval: '1h' })
  fleet = await startFleet(join(dir.path, 'hub'), cleanups, { config: { sync } })
  bridge = await startBridge(fleet.hub.config, { mqttUrl: fleet.hub.mqttUrl })
  cleanups.push(() => bridge.stop())
  await waitFor(() => bridge.rounds.at(-1)?.ok === true, 60_000, 'the start-up round')
  browser = await launchChromium(cleanups)
})

test('sync is on: the page offers Sync now, by keyboard too; it triggers a git bridge round, and the page shows it', async () => {
  const html = await (await fetch(`${fleet.hub.httpUrl}/command`)).text()
  assert.match(html, /<meta name="trinity-sync" content="on">/)
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  await waitInPage(page, `document.querySelector('[data-computer="1"]') !== null`)
  assert.equal(await page.locator('#sync-now').isVisible(), true)
  assert.equal(await page.locator('#sync-off').isVisible(), false, 'no "sync is off" note')
  const before = bridge.rounds.length
  // By keyboard: Tab reaches the button, Enter presses it.
  let tabs = 0
  while (await page.evaluate('document.activeElement?.id') !== 'sync-now') {
    assert.ok(++tabs <= 40, 'Tab reaches Sync now')
    await page.keyboard.press('Tab')
  }
  await page.keyboard.press('Enter')
  await waitInPage(page, `document.querySelector('#notice')?.textContent.includes('sync round requested')`)
  assert.equal(await page.getAttribute('#notice', 'data-tone'), 'ok')
  await waitFor(() => bridge.rounds.length > before && bridge.rounds.at(-1)?.ok === true, 60_000, 'a round after the click')
  // The round's end reaches the page over the bus, a moment after the bridge records it.
  await waitInPage(page, `document.querySelector('#module-bridge')?.textContent.includes('IDLE')`)
  assert.match(await textOf(page, '[data-computer="1"]'), /C1/)
  await page.close()
  assert.deepEqual(errors, [])
})
