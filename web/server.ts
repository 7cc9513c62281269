/**
 * Serves the live dashboards (issue #6) from the hub's HTTP server:
 * `GET /command` (Central Command) and `GET /dashboard` (the detail view),
 * their CSS, their compiled TypeScript, MQTT.js's browser build and TypeBox's
 * ESM build (the pages decode every payload with the contract's schemas), all
 * from this host (no CDN), so the pages work on a machine without internet.
 *
 * The pages are bus clients like any other: they connect to the hub's MQTT
 * over WebSocket (`/mqtt`, same origin) and call the HTTP API. This module
 * knows nothing of the coordinator; the hub only tells it the topic prefix,
 * which it writes into the pages so they build topic names with the contract,
 * and whether sync is on, so a page offers "Sync now" only where POST /sync
 * can work.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { topicsFor } from '../src/contract/topics.js'

export interface DashboardOptions {
  readonly topicPrefix: string
  /** `sync.enabled`: written into the pages as `<meta name="trinity-sync" content="on|off">`. */
  readonly syncEnabled: boolean
}

/** URL prefix of everything the pages load. */
const ASSETS = '/dashboard-assets'

export const PAGES = { command: '/command', dashboard: '/dashboard' } as const

/** This file runs as dist/web/server.js: the html and css stay in web/public. */
const here = dirname(fileURLToPath(import.meta.url))
const publicDir = join(here, '..', '..', 'web', 'public')
/** The pages' compiled modules: `tsc -p web/tsconfig.json` writes them here (part of `npm run build`). */
const appDir = join(here, 'static')
const mqttBrowserDir = join(dirname(createRequire(import.meta.url).resolve('mqtt/package.json')), 'dist')
/** TypeBox 1.x's build: plain ESM, no Node imports. Its package.json exports no `./package.json`, so resolve the entry. */
const typeboxDir = dirname(fileURLToPath(import.meta.resolve('typebox')))

/**
 * The pages' import map: `mqtt-browser`, and every entry point TypeBox
 * exports (`typebox`, `typebox/compile`, and the sub-paths its own modules
 * import by bare name, such as `typebox/guard`), read from its package.json so
 * a sub-path added by an upgrade is mapped too.
 */
function importMap(): string {
  const manifest = JSON.parse(readFileSync(join(typeboxDir, '..', 'package.json'), 'utf8')) as { exports: Record<string, { import: string }> }
  const imports: Record<string, string> = { 'mqtt-browser': `${ASSETS}/vendor/mqtt.esm.js` }
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    imports[subpath === '.' ? 'typebox' : `typebox/${subpath.slice(2)}`] = `${ASSETS}/vendor/typebox/${target.import.replace(/^\.\/build\//, '')}`
  }
  return JSON.stringify({ imports })
}

/** A page with the topic prefix and the sync switch written in; the prefix is validated by the contract, then escaped anyway. */
function page(name: string, options: DashboardOptions, imports: string): string {
  const prefix = topicsFor(options.topicPrefix).prefix.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
  return readFileSync(join(publicDir, name), 'utf8')
    .replaceAll('{{TOPIC_PREFIX}}', prefix)
    .replaceAll('{{SYNC}}', options.syncEnabled ? 'on' : 'off')
    .replaceAll('{{IMPORT_MAP}}', imports)
}

export async function registerDashboard(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const imports = importMap()
  const command = page('command.html', options, imports)
  const dashboard = page('dashboard.html', options, imports)

  await app.register(fastifyStatic, { root: publicDir, prefix: `${ASSETS}/`, index: false, decorateReply: false })
  await app.register(fastifyStatic, { root: appDir, prefix: `${ASSETS}/app/`, index: false, decorateReply: false })
  await app.register(fastifyStatic, {
    root: mqttBrowserDir, prefix: `${ASSETS}/vendor/`, index: false, decorateReply: false,
    allowedPath: (path) => path === '/mqtt.esm.js',
  })
  await app.register(fastifyStatic, {
    root: typeboxDir, prefix: `${ASSETS}/vendor/typebox/`, index: false, decorateReply: false,
    allowedPath: (path) => path.endsWith('.mjs'),
  })

  app.get(PAGES.command, async (_request, reply) => reply.type('text/html; charset=utf-8').send(command))
  app.get(PAGES.dashboard, async (_request, reply) => reply.type('text/html; charset=utf-8').send(dashboard))
}
