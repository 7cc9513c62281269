/**
 * The dashboards and an exposed hub (issue #14, finding 6), in Debian's
 * Chromium:
 * - with tokens and broker auth on, a page without a token shows the sign-in
 *   and nothing of the fleet; with the token (kept in sessionStorage) it gets
 *   its bus login from GET /auth/bus and shows the live fleet, and its
 *   submissions carry the token;
 * - on an open hub (the README tour), a page served from another origin (a
 *   second tiny HTTP server) can neither POST (a body-less cancel, a
 *   text/plain submission) nor open MQTT over WebSocket, while the hub's own
 *   dashboard still does both.
 */
import { createServer, type Server } from 'node:http'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Browser } from 'playwright-core'
import type { Hub } from '../../src/hub.js'
import { startTestHub, testConfig, testScope, waitFor } from '../helpers/hub.js'
import { TestInstance } from '../helpers/instance.js'
import { count, FLEET, launchChromium, openPage, screenshotPath, startFleet, textOf, waitInPage, type Fleet } from './fixtures.js'

const { dir, cleanups } = testScope()
const TOKEN = 'web-submit-token-0123456789'
let fleet: Fleet
let browser: Browser

before(async () => {
  const passwords = Object.fromEntries(FLEET.map((i) => [i.id, `${i.id}-bus-password`]))
  fleet = await startFleet(`${dir.path}/secured`, cleanups, {
    passwords,
    config: {
      hub: { auth: { tokens: [{ name: 'ops', scope: 'submit', token: TOKEN }] } },
      broker: { auth: { enabled: true, users: FLEET.map((i) => ({ username: i.id, password: passwords[i.id], role: 'instance' })) } },
    },
  })
  browser = await launchChromium(cleanups)
})

/** Chromium reports a refused request (our 401 while signed out) as a console error; anything else is a real one. */
const unexpected = (errors: string[]): string[] => errors.filter((e) => !/status of 401/.test(e))

test('with auth on, the dashboard without a token shows a sign-in and no fleet; with the token, the live fleet', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`))
  await page.goto(`${fleet.hub.httpUrl}/command`)
  await page.waitForSelector('#login', { state: 'visible', timeout: 30_000 })
  assert.equal(await page.locator('#bus-state').isVisible(), false, 'the page behind the sign-in is hidden')
  assert.notEqual(await page.getAttribute('body', 'data-bus'), 'connected', 'and not on the bus')
  assert.equal(await page.evaluate(count('.card.instance')), 0, 'no fleet is shown')
  await page.screenshot({ path: screenshotPath('command-sign-in-1280x800.png') })

  await page.fill('#login-token', 'not-the-token-0123456789')
  await page.click('#login button[type="submit"]')
  await waitInPage(page, `/token refused/.test(document.querySelector('#login-error')?.textContent ?? '')`)

  await page.fill('#login-token', TOKEN)
  await page.click('#login button[type="submit"]')
  await page.waitForSelector('body[data-bus="connected"]', { timeout: 30_000 })
  assert.equal(await page.locator('#login').isVisible(), false)
  await waitInPage(page, `${count('.card.instance[data-state="online"]')} === ${FLEET.length}`)
  assert.equal(await page.evaluate(`sessionStorage.getItem('trinity-token')`), TOKEN)

  // A submission from the page carries the token (scope submit) and is done by an instance.
  await page.fill('#task-type', 'analyze_data')
  await page.fill('#task-content', '2 3')
  await page.click('#task-form button[type="submit"]')
  await waitInPage(page, `document.querySelector('#task-outcome')?.dataset.state === 'completed'`)
  assert.match(await textOf(page, '#task-outcome'), /completed/)

  // A reload in the same tab keeps the sign-in.
  await page.reload()
  await page.waitForSelector('body[data-bus="connected"]', { timeout: 30_000 })
  assert.equal(await page.locator('#login').count(), 0, 'no sign-in form after a reload')
  await waitInPage(page, `${count('.card.instance[data-state="online"]')} === ${FLEET.length}`)
  await page.screenshot({ path: screenshotPath('command-signed-in-1280x800.png') })
  await context.close()
  assert.deepEqual(unexpected(errors), [])
})

/** A page of another origin (`http://localhost:port`, not the hub's 127.0.0.1) that tries to drive the hub. */
function evilServer(hubUrl: string, victim: string): Promise<{ url: string; server: Server }> {
  const html = `<!doctype html><title>not the hub</title><script type="module">
    const hub = ${JSON.stringify(hubUrl)}
    const results = {}
    // no-cors: the page cannot read the answers, but the requests are sent, and a forged one would act.
    await fetch(hub + '/tasks/${victim}/cancel', { method: 'POST', mode: 'no-cors' }).then(() => { results.cancel = 'sent' }, (e) => { results.cancel = String(e) })
    await fetch(hub + '/task', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ id: 'forged', type: 'general', content: 'forged' }) })
      .then(() => { results.submit = 'sent' }, (e) => { results.submit = String(e) })
    results.websocket = await new Promise((resolve) => {
      const socket = new WebSocket(hub.replace('http', 'ws') + '/mqtt', 'mqtt')
      socket.onopen = () => { socket.close(); resolve('open') }
      socket.onerror = () => resolve('refused')
    })
    window.results = results
  </script>`
  const server = createServer((_request, response) => { response.writeHead(200, { 'content-type': 'text/html' }); response.end(html) })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address()
    resolve({ url: `http://localhost:${typeof address === 'object' && address !== null ? address.port : 0}/`, server })
  }))
}

test('a page of another origin can neither POST nor open /mqtt on an open hub; the hub\'s own dashboard can', async () => {
  // A long lease: c1 holds the victim and never reports, and it must still be cancellable at the end.
  const hub: Hub = await startTestHub(await testConfig(`${dir.path}/open`, { tasks: { lease: '10m' } }))
  cleanups.push(() => hub.stop())
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', manual: true })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 30_000, 'c1 online')
  const victim = hub.coordinator.submit({ id: 'victim', type: 'general', content: 'keep me' }).task.id
  const { url, server } = await evilServer(hub.httpUrl, victim)
  cleanups.push(() => new Promise((resolve) => server.close(resolve)))

  const context = await browser.newContext()
  const evil = await context.newPage()
  await evil.goto(url)
  await evil.waitForFunction('window.results !== undefined', undefined, { timeout: 30_000 })
  const results = await evil.evaluate<Record<string, string>>('window.results')
  assert.equal(results['cancel'], 'sent', 'the browser did send the cancel')
  assert.equal(results['websocket'], 'refused', JSON.stringify(results))
  assert.notEqual(hub.coordinator.scheduler.get(victim)?.state, 'cancelled', 'the forged cancel did nothing')
  assert.equal(hub.coordinator.scheduler.get('forged'), undefined, 'the forged submission did nothing')
  await context.close()

  // The hub's own page: on the bus over /mqtt, and its cancel goes through.
  const { page, errors } = await openPage(browser, `${hub.httpUrl}/dashboard`)
  const row = `#task-rows tr[data-task="${victim}"]`
  await waitInPage(page, `document.querySelector('${row}') !== null`)
  await page.getByRole('button', { name: `Cancel task ${victim}` }).click()
  await waitInPage(page, `document.querySelector('${row}')?.dataset.state === 'cancelled'`)
  assert.equal(hub.coordinator.scheduler.get(victim)?.state, 'cancelled')
  await page.close()
  assert.deepEqual(errors, [])
})
