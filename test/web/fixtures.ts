/**
 * Dashboard test fixtures: the system Chromium driven by playwright-core
 * (which downloads no browser; scripts/ensure-system-deps.mjs installs
 * Debian's), a page that records console errors, and a hub with the
 * reference fleet's six instances connected as bare MQTT TestInstances.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Hub } from '../../src/hub.js'
import { LIVENESS_FLOOR_MS, ROOT, startTestHub, testConfig, waitFor, type ConfigObject } from '../helpers/hub.js'
import { TestInstance, type TaskHandler } from '../helpers/instance.js'

/** The reference fleet's ids, as in config/trinity.yaml. */
export const FLEET: readonly { id: string; name: string; capabilities: string[] }[] = [
  { id: 'araya', name: 'Araya', capabilities: ['pattern_analysis'] },
  { id: 'builder', name: 'Builder', capabilities: ['build_project'] },
  { id: 'observatory', name: 'Observatory', capabilities: ['monitor_system'] },
  { id: 'visitor-intelligence', name: 'Visitor Intelligence', capabilities: ['track_user'] },
  { id: 'analytics', name: 'Analytics', capabilities: ['analyze_data'] },
  { id: 'c1', name: 'C1 Mechanic', capabilities: ['pattern_analysis', 'build_project', 'bug_fix', 'deployment', 'general'] },
]

/** Screenshots for review land here (gitignored). */
const ARTIFACTS = join(ROOT, 'test-artifacts')

export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }

export async function launchChromium(cleanups: (() => unknown)[]): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  cleanups.push(() => browser.close())
  return browser
}

export interface WatchedPage {
  page: Page
  /** console.error lines and uncaught exceptions, in order. */
  errors: string[]
}

/** A fresh context and page at `url`, waiting until the page says its bus is connected. */
export async function openPage(browser: Browser, url: string, viewport = DESKTOP): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport })
  // Liveness bounds, like waitFor's floor: Chromium on a loaded machine can take half a minute to load a page.
  context.setDefaultTimeout(LIVENESS_FLOOR_MS)
  context.setDefaultNavigationTimeout(LIVENESS_FLOOR_MS)
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`))
  await page.goto(url)
  await page.waitForSelector('body[data-bus="connected"]', { timeout: LIVENESS_FLOOR_MS })
  return { page, errors }
}

export function screenshotPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true })
  return join(ARTIFACTS, name)
}

export interface Fleet {
  hub: Hub
  instances: Map<string, TestInstance>
}

/**
 * Loose health thresholds: on a loaded test machine a ping answered late must
 * not turn an instance degraded under a test that is about something else.
 */
export const FLEET_HEALTH = { interval: '500ms', timeout: '5s', degradedAfter: '3s' }

export interface FleetOptions {
  handlers?: Record<string, TaskHandler>
  manual?: string[]
  config?: ConfigObject
  /** Instances checked by HTTP GET at this URL instead of MQTT pings; they need not be online at start. */
  healthUrls?: Record<string, string>
  /** With broker auth on: each instance's bus password (its username is its id). */
  passwords?: Record<string, string>
}

/** A hub whose config lists the six reference instances (MQTT health pings unless `healthUrls` says otherwise), all connected. */
export async function startFleet(dataDir: string, cleanups: (() => unknown)[], options: FleetOptions = {}): Promise<Fleet> {
  const healthUrls = options.healthUrls ?? {}
  const hub = await startTestHub(await testConfig(dataDir, {
    instances: FLEET.map((i) => ({ id: i.id, name: i.name, role: i.id, capabilities: i.capabilities, ...(healthUrls[i.id] === undefined ? {} : { healthUrl: healthUrls[i.id] }) })),
    health: FLEET_HEALTH,
    ...options.config,
  }))
  cleanups.push(() => hub.stop())
  const instances = new Map<string, TestInstance>()
  for (const spec of FLEET) {
    const handler = options.handlers?.[spec.id]
    const instance = await TestInstance.start({
      url: hub.mqttUrl, id: spec.id, capabilities: spec.capabilities,
      ...(handler === undefined ? {} : { handler }),
      ...(options.manual?.includes(spec.id) === true ? { manual: true } : {}),
      ...(options.passwords?.[spec.id] === undefined ? {} : { username: spec.id, password: options.passwords[spec.id] }),
    })
    cleanups.push(() => instance.close())
    instances.set(spec.id, instance)
  }
  await waitFor(() => hub.coordinator.instances().every((i) => i.id in healthUrls || i.state === 'online'), 30_000, 'the instances online')
  return { hub, instances }
}

/**
 * Resolves when `predicate` (a JavaScript expression, evaluated in the page on
 * every animation frame) is true. A string, because this file is compiled
 * without the DOM types the browser side has.
 */
/** A liveness bound, never shorter than waitFor's floor. */
export async function waitInPage(page: Page, predicate: string, timeout = LIVENESS_FLOOR_MS): Promise<void> {
  await page.waitForFunction(predicate, undefined, { timeout: Math.max(timeout, LIVENESS_FLOOR_MS), polling: 'raf' })
}

export function count(selector: string): string {
  return `document.querySelectorAll(${JSON.stringify(selector)}).length`
}

/** The state text an element shows (e.g. `● online`). */
export async function textOf(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent()) ?? ''
}
