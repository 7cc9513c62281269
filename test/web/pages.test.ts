/**
 * Both dashboards load in Debian's Chromium with no console errors, served
 * entirely by the hub (no CDN), and show the six instances with their states
 * and the platform pieces from their retained topics, or "—" when absent.
 * Screenshots at 1280×800 and phone width go to test-artifacts/ for review.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import type { Browser } from 'playwright-core'
import { DEFAULT_PRIORITY, PRIORITIES, TASK_STATES, TASK_TYPE_PATTERN } from '../../src/contract/constants.js'
import { topicsFor } from '../../src/contract/topics.js'
import { http, LIVENESS_FLOOR_MS, ROOT, testScope } from '../helpers/hub.js'
import { sourceFiles } from '../helpers/source-files.js'
import { count, DESKTOP, FLEET, launchChromium, openPage, PHONE, screenshotPath, startFleet, textOf, waitInPage, type Fleet } from './fixtures.js'

const { dir, cleanups } = testScope()
let fleet: Fleet
let browser: Browser

/** A long answer, as real instances give: the task table must still fit 1280 px. */
const REPORT = 'pattern found: the series grows by the sum of its two previous terms; next values 13, 21, 34, 55; confidence high; no anomalies in the last 500 samples; '.repeat(3)

before(async () => {
  // Araya or C1 (both take pattern_analysis) answer with it.
  fleet = await startFleet(dir.path, cleanups, { handlers: { araya: () => ({ report: REPORT }), c1: () => ({ report: REPORT }) } })
  browser = await launchChromium(cleanups)
})

test('the hub serves both pages, their scripts and MQTT.js from itself', async () => {
  for (const path of ['/command', '/dashboard']) {
    const response = await fetch(`${fleet.hub.httpUrl}${path}`)
    assert.equal(response.status, 200, path)
    assert.match(response.headers.get('content-type') ?? '', /text\/html/)
    const html = await response.text()
    assert.doesNotMatch(html, /https?:\/\//, `${path} loads nothing from another host`)
    assert.match(html, /<meta name="trinity-topic-prefix" content="trinity">/)
    for (const [, src] of html.matchAll(/(?:src|href)="(\/[^"]+)"/g)) {
      const asset = await fetch(`${fleet.hub.httpUrl}${src}`)
      assert.equal(asset.status, 200, `${path} → ${src}`)
    }
  }
  const vendor = await fetch(`${fleet.hub.httpUrl}/dashboard-assets/vendor/mqtt.esm.js`)
  assert.equal(vendor.status, 200)
  assert.match(vendor.headers.get('content-type') ?? '', /javascript/)
  const other = await http(fleet.hub.httpUrl, 'GET', '/dashboard-assets/vendor/mqtt.js')
  assert.equal(other.status, 404, 'only the ESM browser build is served from node_modules')
})

test('both pages carry the one task form, its choices from the contract\'s constants, not written in the HTML', async () => {
  const forms: string[] = []
  for (const path of ['/command', '/dashboard']) {
    const html = await (await fetch(`${fleet.hub.httpUrl}${path}`)).text()
    assert.doesNotMatch(html, /<option>normal<\/option>|id="task-form"/, `${path} writes no task form of its own`)
    const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}${path}`)
    await waitInPage(page, `document.querySelector('#task-form #task-priority') !== null`)
    const priorities = await page.locator('#task-priority option').evaluateAll((options) => options.map((o) => (o as unknown as { value: string }).value))
    assert.deepEqual(priorities, [...PRIORITIES], path)
    assert.equal(await page.locator('#task-priority').inputValue(), DEFAULT_PRIORITY, path)
    assert.equal(`^${await page.locator('#task-type').getAttribute('pattern') ?? ''}$`, TASK_TYPE_PATTERN, path)
    assert.equal(await page.locator('#task-outcome').count(), 1, path)
    if (path === '/dashboard') {
      const filter = await page.locator('#task-filter option').evaluateAll((options) => options.map((o) => (o as unknown as { value: string }).value))
      assert.deepEqual(filter, ['all', 'active', ...TASK_STATES])
    }
    forms.push(await page.locator('#task-form').evaluate((form: { outerHTML: string }) => form.outerHTML))
    assert.deepEqual(errors, [], `${path}: no console errors`)
    await page.context().close()
  }
  assert.equal(forms[0], forms[1], 'the same form on both pages')
})

for (const path of ['/command', '/dashboard']) {
  test(`${path} loads without console errors and shows the six instances with their states`, async () => {
    const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}${path}`)
    const selector = path === '/command' ? '.card.instance' : '#instance-rows tr'
    await waitInPage(page, `${count(`${selector}[data-state="online"]`)} === 6`)
    for (const { id } of FLEET) {
      const text = await textOf(page, `${selector}[data-instance="${id}"]`)
      assert.match(text, new RegExp(id), `${id} is on ${path}`)
      assert.match(text, /● online/, `${id}'s state is written out, not only coloured: ${text}`)
    }
    assert.equal(await page.locator('#bus-banner').isVisible(), false, 'no disconnected banner while the bus is up')
    const nav = path === '/command' ? '/dashboard' : '/command'
    assert.equal(await page.locator(`nav a[href="${nav}"]`).count(), 1, 'the pages link to each other')
    await page.close()
    assert.deepEqual(errors, [])
  })
}

test('platform pieces render from their retained topics, and as "—" while absent', async () => {
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  assert.match(await textOf(page, '#module-bridge'), /—/)
  assert.match(await textOf(page, '#module-supervisor'), /—/)
  assert.equal(await page.locator('#computers-empty').isVisible(), true)

  const topics = topicsFor()
  const client = await mqtt.connectAsync(fleet.hub.mqttUrl)
  cleanups.push(async () => {
    // Clear the retained state this test left, then leave.
    for (const topic of [topics.supervisorStatus, topics.bridgeStatus, topics.computerStatus('1'), topics.computerStatus('2')]) {
      await client.publishAsync(topic, '', { qos: 1, retain: true })
    }
    await client.endAsync()
  })
  const now = Date.now()
  await client.publishAsync(topics.supervisorStatus, JSON.stringify({
    state: 'running', pid: 4242, startedAt: now - 60_000, at: now, somethingNew: true,
    children: [
      { name: 'araya', kind: 'instance', instance: 'araya', pid: 77, state: 'running', restarts: 3, startedAt: now - 4000, readyAt: now - 3900, lastExit: { code: 1, signal: null, at: now - 5000 }, nextRestartAt: null, reason: null },
      { name: 'analytics', kind: 'instance', instance: 'analytics', pid: null, state: 'error', restarts: 5, startedAt: now - 2000, readyAt: null, lastExit: { code: 3, signal: null, at: now - 1000 }, nextRestartAt: null, reason: 'crash loop: 6 exits within 120000 ms (last: exited with code 3)' },
    ],
  }), { qos: 1, retain: true })
  await client.publishAsync(topics.bridgeStatus, JSON.stringify({ computer: '1', state: 'SYNCING', lastRoundAt: now - 2000, lastSuccessAt: now - 2000, lastError: null, queued: 4, awaitingReceipt: 0, nextRoundAt: now + 30_000, outgoing: [], at: now }), { qos: 1, retain: true })
  // As the bridge publishes them (ComputerStatus): times as ISO 8601 strings, null where a computer never wrote one.
  const lastSync = new Date(now - 2000).toISOString()
  await client.publishAsync(topics.computerStatus('1'), JSON.stringify({ computer: '1', state: 'ACTIVE', updated: new Date(now).toISOString(), lastSync, instances: [{ id: 'araya', health: 'online' }], queueDepth: 0, read: {} }), { qos: 1, retain: true })
  await client.publishAsync(topics.computerStatus('2'), JSON.stringify({ computer: '2', state: 'OFFLINE', updated: null, lastSync: '2026-11-25T10:00:00Z', instances: [], queueDepth: 3, read: {} }), { qos: 1, retain: true })

  await waitInPage(page, `${count('#computers [data-computer]')} === 2`)
  assert.match(await textOf(page, '[data-computer="1"]'), new RegExp(`C1.*ACTIVE.*last sync ${lastSync.replaceAll('.', '\\.')}.*1 instances · queue 0`, 's'))
  assert.match(await textOf(page, '[data-computer="2"]'), /C2.*✖ OFFLINE.*last sync 2026-11-25T10:00:00Z · updated —.*queue 3/s, 'a null field shows as —')
  assert.match(await textOf(page, '#module-bridge'), /SYNCING.*queued 4/s)
  assert.match(await textOf(page, '#module-supervisor'), /running.*2 processes/s)
  // A crash loop outranks the last health verdict, in words as well as colour.
  await waitInPage(page, `document.querySelector('.card.instance[data-instance="analytics"]')?.dataset.state === 'error'`)
  assert.match(await textOf(page, '.card.instance[data-instance="analytics"]'), /error.*restarts 5 · crash loop: 6 exits/s)
  assert.match(await textOf(page, '.card.instance[data-instance="araya"]'), /restarts 3/)
  assert.match(await textOf(page, '.card.instance[data-instance="builder"]'), /restarts —/)

  const detail = await openPage(browser, `${fleet.hub.httpUrl}/dashboard`)
  await waitInPage(detail.page, `document.querySelector('#instance-rows tr[data-instance="araya"] td:nth-child(8)')?.textContent === '3'`)
  await waitInPage(detail.page, `document.querySelector('#instance-rows tr[data-instance="analytics"]')?.dataset.state === 'error'`)
  assert.match(await textOf(detail.page, '#instance-rows tr[data-instance="analytics"]'), /crash loop/)
  await detail.page.close()
  // Out of the loop again (the next test needs all six online).
  await client.publishAsync(topics.supervisorStatus, JSON.stringify({ state: 'running', pid: 4242, startedAt: now - 60_000, at: Date.now(), children: [] }), { qos: 1, retain: true })
  await waitInPage(page, `document.querySelector('.card.instance[data-instance="analytics"]')?.dataset.state === 'online'`)
  await page.close()
  assert.deepEqual([...errors, ...detail.errors], [])
})

test('a bus payload that breaks its schema is dropped with the field and the reason in the activity log; a valid one renders', async () => {
  const topics = topicsFor()
  const client = await mqtt.connectAsync(fleet.hub.mqttUrl)
  cleanups.push(async () => {
    await client.publishAsync(topics.bridgeStatus, '', { qos: 1, retain: true })
    await client.endAsync()
  })
  // Start from no bridge status (an earlier test may have left one retained).
  await client.publishAsync(topics.bridgeStatus, '', { qos: 1, retain: true })
  const now = Date.now()
  const status = { computer: '1', lastRoundAt: now - 2000, lastSuccessAt: now - 60_000, lastError: 'push rejected by origin', queued: 2, awaitingReceipt: 0, nextRoundAt: now + 30_000, outgoing: [], at: now }
  await client.publishAsync(topics.bridgeStatus, JSON.stringify({ ...status, state: 42 }), { qos: 1, retain: true })

  // Retained: a page opened now gets it replayed on subscribe.
  const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/command`)
  const dropped = `${topics.bridgeStatus}: payload dropped: state: must be equal to one of the allowed values (IDLE, SYNCING, ERROR)`
  await waitInPage(page, `document.querySelector('#activity')?.textContent.includes(${JSON.stringify(dropped)})`)
  const before = await textOf(page, '#module-bridge')
  assert.match(before, /not reporting/, `nothing of the bad payload is drawn: ${before}`)
  assert.doesNotMatch(before, /42|push rejected|queued 2/, before)

  await client.publishAsync(topics.bridgeStatus, JSON.stringify({ ...status, state: 'ERROR' }), { qos: 1, retain: true })
  await waitInPage(page, `document.querySelector('#module-bridge')?.textContent.includes('push rejected by origin')`)
  assert.match(await textOf(page, '#module-bridge'), /ERROR.*queued 2 · push rejected by origin/s)
  await page.close()
  assert.deepEqual(errors, [])
})

test('the pages load TypeBox and the contract from the hub, and no module they load imports Node', async () => {
  const html = await (await fetch(`${fleet.hub.httpUrl}/command`)).text()
  const map = /<script type="importmap">([^<]*)<\/script>/.exec(html)?.[1]
  assert.ok(map !== undefined, 'the page has an import map')
  const imports = (JSON.parse(map) as { imports: Record<string, string> }).imports
  for (const name of ['mqtt-browser', 'typebox', 'typebox/compile', 'typebox/guard', 'typebox/schema', 'typebox/system']) {
    assert.ok(imports[name] !== undefined, `${name} is mapped`)
    assert.equal((await fetch(`${fleet.hub.httpUrl}${imports[name]}`)).status, 200, `${name} → ${imports[name]}`)
  }
  // Statically: every bare specifier in the page's modules and in TypeBox's build is in the map (so none is `node:…`).
  const specifiers = (file: string): string[] =>
    [...readFileSync(file, 'utf8').matchAll(/\b(?:import|export)\b[^'";()]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '')
  const typebox = dirname(fileURLToPath(import.meta.resolve('typebox')))
  const files = [...sourceFiles(join(ROOT, 'dist', 'web', 'static'), /\.js$/), ...sourceFiles(typebox, /\.mjs$/)]
  const unmapped = files.flatMap((file) => specifiers(file).filter((s) => !s.startsWith('.') && !(s in imports)).map((s) => `${relative(ROOT, file)} → ${s}`))
  assert.deepEqual(unmapped, [])
  assert.ok(files.some((f) => f.endsWith('payloads/validate.js')), 'the contract\'s decoding is in the page\'s bundle')

  // In Chromium: every module request answered, TypeBox among them.
  const context = await browser.newContext({ viewport: DESKTOP })
  const page = await context.newPage()
  const failed: string[] = []
  const loaded: string[] = []
  page.on('requestfailed', (request) => failed.push(`${request.url()}: ${request.failure()?.errorText ?? ''}`))
  page.on('response', (response) => { if (response.status() >= 400) failed.push(`${response.url()}: ${response.status()}`); else loaded.push(response.url()) })
  const errors: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`))
  await page.goto(`${fleet.hub.httpUrl}/command`)
  await page.waitForSelector('body[data-bus="connected"]', { timeout: LIVENESS_FLOOR_MS })
  await waitInPage(page, `${count('.card.instance[data-state="online"]')} === 6`)
  await context.close()
  assert.deepEqual(failed, [])
  assert.deepEqual(errors, [])
  assert.ok(loaded.some((url) => url.includes('/dashboard-assets/vendor/typebox/compile/')), 'TypeBox\'s compiler was loaded')
  assert.ok(loaded.some((url) => url.endsWith('/src/contract/payloads/validate.js')), 'the contract\'s decode was loaded')
})

test('screenshots of both pages at 1280×800 and at phone width', async () => {
  // Some traffic, so the tables in the pictures are not empty.
  for (const type of ['analyze_data', 'pattern_analysis', 'monitor_system']) {
    assert.equal((await http(fleet.hub.httpUrl, 'POST', '/task', { type, content: '1 2 3 5 8', priority: 'high' })).status, 202)
  }
  // Long content and a long result (the report) in the task table.
  const long = { series: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233], question: 'what comes next, and how sure are you? explain the pattern in full, step by step, with the evidence for each step' }
  assert.equal((await http(fleet.hub.httpUrl, 'POST', '/task', { type: 'pattern_analysis', content: long })).status, 202)
  assert.equal((await http(fleet.hub.httpUrl, 'POST', '/send', { from: 'c1', to: 'araya', message: 'pattern run done, results in the queue' })).status, 202)
  for (const [name, viewport] of [['1280x800', DESKTOP], ['390-phone', PHONE]] as const) {
    for (const path of ['command', 'dashboard']) {
      const { page, errors } = await openPage(browser, `${fleet.hub.httpUrl}/${path}`, viewport)
      await waitInPage(page, `${count('[data-instance][data-state="online"]')} >= 6`)
      if (path === 'dashboard') {
        await waitInPage(page, `${count('#task-rows tr[data-state="completed"]')} >= 3 && ${count('#message-rows tr')} >= 1`)
        await waitInPage(page, `${count('#timeline li:first-child .tick')} >= 4`)
        await waitInPage(page, `document.querySelector('#task-rows')?.textContent.includes('pattern found: the series grows')`)
        if (viewport === DESKTOP) {
          // Every task cell inside the viewport, the table inside its box: nothing cut off at the right.
          const overflow = await page.evaluate<{ out: string[]; scroll: number; client: number; cells: number }>(`(() => {
            const box = document.querySelector('#task-rows').closest('.scroll')
            const cells = [...document.querySelectorAll('#task-rows td')]
            const out = cells.filter((td) => td.getBoundingClientRect().right > window.innerWidth).map((td) => td.textContent.slice(0, 40))
            return { out, scroll: box.scrollWidth, client: box.clientWidth, cells: cells.length }
          })()`)
          assert.ok(overflow.cells >= 40, `the table has rows (${overflow.cells} cells)`)
          assert.deepEqual(overflow.out, [], 'no task cell ends beyond the right edge at 1280 px')
          assert.ok(overflow.scroll <= overflow.client, `the task table fits its box (${overflow.scroll} > ${overflow.client})`)
          const result = page.locator('#task-rows tr', { hasText: 'pattern found' }).first().locator('td:nth-child(9)')
          const title = await result.getAttribute('title') ?? ''
          assert.ok(title.length === 160 && title.endsWith('…') && title.includes('pattern found: the series grows'), `the result's preview is whole in its tooltip: ${title}`)
          assert.equal(await result.textContent(), title, 'and in the cell, which CSS cuts to fit')
          await page.locator('#task-rows').screenshot({ path: screenshotPath('dashboard-tasks-1280x800.png') })
        }
      } else {
        await waitInPage(page, `${count('#activity li')} >= 8`)
      }
      const scroll = await page.evaluate<number>('document.documentElement.scrollWidth')
      assert.ok(scroll <= viewport.width, `${path} at ${viewport.width}px needs no sideways scrolling (${scroll}px)`)
      await page.screenshot({ path: screenshotPath(`${path}-${name}.png`), fullPage: name !== '1280x800' })
      await page.close()
      assert.deepEqual(errors, [])
    }
  }
})
