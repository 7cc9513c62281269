/**
 * The pages say one thing about an instance: its card (or table row) and the
 * activity log read the same folded state, whichever of the status topic
 * (a birth: connected) and the health topic (the verdict) arrived last; and
 * the health timeline holds checks made before the page opened (the hub
 * keeps the last 40 per instance and serves them in GET /instances).
 *
 * Visitor Intelligence gets a health URL nobody answers at first: its birth
 * says online while every check says it is not, the situation in which the
 * log used to say "visitor-intelligence is online" beside an offline card.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import type { Health } from '../../src/contract/payloads/instance.js'
import { freePort, http, testScope, waitFor } from '../helpers/hub.js'
import { FLEET, launchChromium, openPage, screenshotPath, startFleet, textOf, waitInPage, type Fleet } from './fixtures.js'

const { dir, cleanups } = testScope()
let fleet: Fleet
let browser: Browser
let healthPort: number
const VI = 'visitor-intelligence'

before(async () => {
  healthPort = await freePort()
  fleet = await startFleet(dir.path, cleanups, { healthUrls: { [VI]: `http://127.0.0.1:${healthPort}/health` } })
  browser = await launchChromium(cleanups)
})

/** In the page: what it shows for `id` (its card or row) and what the newest activity line about it says. */
function shownAndSaid(selector: string, id: string): string {
  return `(() => {
    const node = document.querySelector(${JSON.stringify(`${selector}[data-instance="${id}"]`)})
    const words = new RegExp(${JSON.stringify(`(?:^|\\s)${id} is (\\S+)`)})
    const line = [...document.querySelectorAll('#activity li')].map((li) => words.exec(li.textContent ?? '')).find((m) => m !== null)
    return { shown: node?.dataset.state ?? null, said: line?.[1] ?? null }
  })()`
}

/**
 * Every instance's card (or row) and the log's last word on it agree. The log
 * is a list, redrawn at most every 250 ms, so it may trail the card by that
 * much: wait for it, then assert (a log that says something else forever fails).
 */
async function assertAgree(page: Page, selector: string, where: string): Promise<void> {
  const all = `[${FLEET.map(({ id }) => shownAndSaid(selector, id)).join(', ')}]`
  await waitInPage(page, `${all}.every((x) => x.shown !== null && x.said === x.shown)`, 30_000).catch(() => undefined)
  for (const { id } of FLEET) {
    const { shown, said } = await page.evaluate<{ shown: string | null; said: string | null }>(shownAndSaid(selector, id))
    assert.ok(shown !== null, `${where}: ${id} is shown`)
    assert.equal(said, shown, `${where}: the activity log's last word on ${id} is what its ${selector} shows`)
  }
}

function answering(port: number): Promise<Server> {
  const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'))
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

test('the health timeline shows checks made before the page opened, from GET /instances', async () => {
  const araya = fleet.hub.coordinator.registry.get('araya')!
  await waitFor(() => araya.checks >= 6, 30_000, 'six health checks of araya')
  const { body } = await http<{ instances: { id: string; recentChecks: Health[] }[] }>(fleet.hub.httpUrl, 'GET', '/instances')
  const served = body.instances.find((i) => i.id === 'araya')?.recentChecks ?? []
  assert.ok(served.length >= 6 && served.length <= 40, `GET /instances serves araya's recent checks (${served.length})`)
  assert.ok(served.every((c, i) => c.state === 'online' && (i === 0 || c.checkedAt >= served[i - 1]!.checkedAt)), 'oldest first')

  // No checks while the page opens: on a loaded machine that can take longer than the
  // 40 ticks the timeline keeps, and live ticks would push the earlier ones out.
  fleet.hub.coordinator.health.stop()
  try {
    const openedAt = Date.now()
    const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
    const before = `[...document.querySelectorAll('#timeline li[data-instance="araya"] .tick')].filter((t) => Number(t.dataset.at) < ${openedAt}).length`
    // The bus alone gives one of them (the retained record); the rest come from the hub's memory.
    await waitInPage(page, `${before} >= 6`)
    const ticks = await page.evaluate<number[]>(`[...document.querySelectorAll('#timeline li[data-instance="araya"] .tick')].map((t) => Number(t.dataset.at))`)
    assert.ok(ticks.length <= 40, `at most 40 ticks (${ticks.length})`)
    assert.deepEqual(ticks, [...new Set(ticks)].sort((a, b) => a - b), 'one tick per check, oldest first')
    await page.close()
    assert.deepEqual(errors, [])
  } finally {
    fleet.hub.coordinator.health.start()
  }
  // Checks go on after a stop and a start.
  const checks = araya.checks
  await waitFor(() => araya.checks > checks, 30_000, 'araya checked again after the health monitor restarted')
})

test('card, table row and activity log agree on an instance whose birth says online and whose checks fail', async () => {
  await waitFor(() => fleet.hub.coordinator.registry.get(VI)?.state === 'offline', 30_000, `${VI} offline by its health checks`)
  assert.equal(fleet.hub.coordinator.registry.get(VI)?.connected, true, 'its birth is on the bus: connected, yet offline')
  const command = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  const detail = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  const card = `.card.instance[data-instance="${VI}"]`
  const row = `#instance-rows tr[data-instance="${VI}"]`
  await waitInPage(command.page, `document.querySelector('${card}')?.dataset.state === 'offline'`, 30_000)
  await waitInPage(detail.page, `document.querySelector('${row}')?.dataset.state === 'offline'`, 30_000)
  assert.match(await textOf(command.page, card), /✖ offline/)
  await assertAgree(command.page, '.card.instance', '/command, offline')
  await assertAgree(detail.page, '#instance-rows tr', '/dashboard, offline')
  const line = await command.page.evaluate<string | undefined>(`[...document.querySelectorAll('#activity li')].map((li) => li.textContent ?? '').find((t) => t.includes('${VI} is offline'))`)
  const reason = new RegExp(`${VI} is offline \\((.+)\\)$`).exec(line ?? '')?.[1]
  assert.ok(reason !== undefined, 'the log gives the reason')
  assert.ok((await textOf(command.page, card)).includes(reason), `the card gives the same reason: ${reason}`)
  await command.page.screenshot({ path: screenshotPath('command-health-offline-1280x800.png') })

  // Its health URL starts answering: online on both, in the log too.
  const server = await answering(healthPort)
  cleanups.push(() => new Promise((resolve) => server.close(resolve)))
  await waitInPage(command.page, `document.querySelector('${card}')?.dataset.state === 'online'`, 30_000)
  await waitInPage(detail.page, `document.querySelector('${row}')?.dataset.state === 'online'`, 30_000)
  await assertAgree(command.page, '.card.instance', '/command, back online')
  await assertAgree(detail.page, '#instance-rows tr', '/dashboard, back online')

  // And away again.
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await waitInPage(command.page, `document.querySelector('${card}')?.dataset.state === 'offline'`, 30_000)
  await waitInPage(detail.page, `document.querySelector('${row}')?.dataset.state === 'offline'`, 30_000)
  await assertAgree(command.page, '.card.instance', '/command, offline again')
  await assertAgree(detail.page, '#instance-rows tr', '/dashboard, offline again')
  await command.page.close()
  await detail.page.close()
  assert.deepEqual([...command.errors, ...detail.errors], [])
})
