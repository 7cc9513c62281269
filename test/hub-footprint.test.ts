/**
 * The hub's footprint at idle (issue #12), checked by what it loads, not by
 * its RSS (which load on the machine moves): a started hub that has answered
 * HTTP and run a task over MQTT has not loaded the modules only other
 * processes or modes use (each one costs megabytes), runs with `gc` exposed
 * (src/heap-settle.ts gives a burst's heap back with it), Aedes's packet
 * encoder keeps no number cache (broker/packet-numbers.ts), mqtt-packet's
 * `debug` calls cost nothing unless DEBUG asks for them (broker/quiet-debug.ts),
 * and TypeBox is loaded only for the generated checks' helpers
 * (scripts/freeze-schemas.mjs).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TEST_ENV } from '../src/config/env.js'
import { loadConfigFile } from '../src/config/load.js'
import { resolvedConfigEnv } from '../src/config/resolved-env.js'
import type { ModuleProbeReport } from './fixtures/module-probe.js'
import { ROOT, spawnHub, testConfig, testScope, waitFor, writeConfig } from './helpers/hub.js'
import { TestInstance } from './helpers/instance.js'

const { dir, cleanups } = testScope()

/**
 * Packages a running embedded hub must not load: other commands' and modes' (MQTT.js: `trinity tail` and
 * the external-mode bus; the MCP SDK: `trinity mcp`; simple-git: the bridge) and what only a TTY or a
 * log file needs (pino-pretty, pino-roll), and prom-client until the first scrape of GET /metrics.
 */
const NOT_AT_IDLE = ['mqtt', '@modelcontextprotocol/sdk', 'simple-git', 'pino-pretty', 'pino-roll', 'prom-client']

/** The package a module URL or path belongs to, if it is under node_modules. */
function packageOf(file: string): string | undefined {
  return /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]
}

test('an idle embedded hub loads none of the modules it does not use, exposes gc, keeps no packet number cache, and quiets mqtt-packet\'s debug', async () => {
  const config = await testConfig(dir.path, { instances: [{ id: 'probe-worker', concurrency: 10 }], routes: { general: { targets: ['probe-worker'] } } })
  const out = join(dir.path, 'modules.json')
  const hub = await spawnHub(writeConfig(dir.path, config), {
    nodeArgs: ['--import', join(ROOT, 'dist/test/fixtures/module-probe.js')],
    env: { [TEST_ENV.moduleProbe]: out },
  })
  cleanups.push(() => hub.kill())

  // One task through, so the broker has written packets and the HTTP routes have answered.
  const worker = await TestInstance.start({ url: hub.mqttUrl, id: 'probe-worker', capabilities: ['general'] })
  cleanups.push(() => worker.close())
  await waitFor(async () => {
    const response = await fetch(`${hub.httpUrl}/task`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'footprint-1', type: 'general', content: 'x' }) })
    return response.status === 202 || response.status === 200
  }, 30_000, 'the task accepted')
  await waitFor(async () => (await fetch(`${hub.httpUrl}/tasks/footprint-1`).then((r) => r.json() as Promise<{ state: string }>)).state === 'completed', 30_000, 'the task completed')

  hub.child.kill('SIGUSR2')
  await waitFor(() => existsSync(out), 30_000, 'the module probe report')
  const report = JSON.parse(readFileSync(out, 'utf8')) as ModuleProbeReport
  const loaded = new Set([...report.esm, ...report.cjs].map(packageOf).filter((p) => p !== undefined))

  // The probe sees what the hub does load: otherwise the absences below would prove nothing.
  for (const used of ['aedes', 'better-sqlite3', 'fastify', 'mqtt-packet']) assert.ok(loaded.has(used), `the probe saw ${used} (loaded: ${[...loaded].join(', ')})`)
  for (const unused of NOT_AT_IDLE) assert.ok(!loaded.has(unused), `${unused} is loaded by an idle embedded hub`)
  // TypeBox: only the helpers of the checks the build generated (scripts/freeze-schemas.mjs), not its builders or compiler.
  const typebox = report.esm.filter((url) => url.includes('/node_modules/typebox/'))
  assert.ok(typebox.length > 0, 'the generated checks load typebox/guard')
  assert.deepEqual(typebox.filter((url) => !url.includes('/node_modules/typebox/build/guard/')), [], 'TypeBox beyond its guard is loaded by an idle embedded hub')
  assert.equal(report.gcExposed, true, 'the hub runs with --expose-gc (src/hub-node-args.ts)')
  assert.equal(report.packetNumberCache, false, "Aedes's mqtt-packet keeps its 65,536-Buffer number cache")
  assert.equal(report.quietPacketDebug, true, 'broker/quiet-debug.ts ran before mqtt-packet loaded (embedded.ts imports it before Aedes)')
})

test('a hub handed its config resolved, as `trinity start` hands it, does not load the YAML parser', async () => {
  const file = writeConfig(dir.path, await testConfig(join(dir.path, 'resolved-data'), {}), 'resolved.yaml')
  const probe = async (name: 'from-file' | 'resolved'): Promise<Set<string | undefined>> => {
    const out = join(dir.path, `${name}.json`)
    const env = { [TEST_ENV.moduleProbe]: out, ...(name === 'resolved' ? resolvedConfigEnv(loadConfigFile(file)) : {}) }
    const hub = await spawnHub(file, { nodeArgs: ['--import', join(ROOT, 'dist/test/fixtures/module-probe.js')], env })
    cleanups.push(() => hub.kill())
    const health = await fetch(`${hub.httpUrl}/health`)
    assert.equal(health.status, 200)
    hub.child.kill('SIGUSR2')
    await waitFor(() => existsSync(out), 30_000, `the module probe report (${name})`)
    await hub.kill()
    const report = JSON.parse(readFileSync(out, 'utf8')) as ModuleProbeReport
    return new Set([...report.esm, ...report.cjs].map(packageOf))
  }
  // The same hub reading the file does load it: the probe sees the difference.
  assert.ok((await probe('from-file')).has('yaml'), 'a hub that reads its config file loads yaml')
  assert.ok(!(await probe('resolved')).has('yaml'), 'a hub handed its resolved config loads yaml')
})

test('DEBUG still turns mqtt-packet\'s debugging on', async () => {
  const hub = await spawnHub(writeConfig(dir.path, await testConfig(join(dir.path, 'debug-data'), {}), 'debug.yaml'), { env: { DEBUG: 'mqtt-packet:parser' } })
  cleanups.push(() => hub.kill())
  const client = await TestInstance.start({ url: hub.mqttUrl, id: 'debug-probe', capabilities: ['general'] })
  cleanups.push(() => client.close())
  await waitFor(() => hub.output().includes('mqtt-packet:parser'), 30_000, "mqtt-packet's parser debugging in the hub's output")
})
