/**
 * A/B of two builds' hub CPU per task, for a change whose effect is smaller
 * than the machine's noise between `npm run bench` runs (issue #12):
 *
 *   git worktree add ../base HEAD~1 && ln -s "$PWD/node_modules" ../base/ && (cd ../base && npm run build)
 *   node dist/bench/ab.js ../base . 3
 *
 * Each side runs the hub of its own build (dist/src/hub.js under the root
 * given) in a process of its own, driven by this build's bench clients
 * (bench/trinity-clients.ts) from a child process: a warm-up burst of 10,000
 * tasks, then three more, each timed; hub CPU per task is the hub process's
 * user + system time over the burst. The sides alternate, `pairs` times, so a
 * noisy stretch of the machine lands on both.
 */
import { fork } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const BURST = 10_000
const TIMED_BURSTS = 3

interface HubModules {
  startHub(config: unknown, log: unknown): Promise<{ mqttUrl: string; stop(): Promise<void> }>
  loadConfigFile(file: string): unknown
  createLogger(options: { level: string }): unknown
  testConfig(dataDir: string, overrides: unknown): Promise<unknown>
  writeConfig(dir: string, config: unknown): string
  tempDir(prefix: string): { path: string; remove(): void }
}

async function hubModules(root: string): Promise<HubModules> {
  const load = (path: string): Promise<Record<string, unknown>> => import(resolve(root, 'dist', path)) as Promise<Record<string, unknown>>
  // The hub first: it must load before anything else of its build (broker/quiet-debug.ts).
  const hub = await load('src/hub.js')
  return { ...hub, ...(await load('src/config/load.js')), ...(await load('src/log.js')), ...(await load('test/helpers/hub.js')) } as unknown as HubModules
}

/** `--hub ROOT`: one side's hub, in this process; prints its CPU per task and tasks/s per timed burst as JSON. */
async function runHub(root: string): Promise<void> {
  const m = await hubModules(root)
  const dir = m.tempDir('trinity-ab-')
  const config = await m.testConfig(dir.path, {
    log: { level: 'warn' }, store: { sync: 'normal' }, health: { interval: '30s', timeout: '5s' },
    tasks: { lease: '60s', keepFinished: 1_000_000 }, instances: [{ id: 'noop', concurrency: 1000 }], routes: { general: { targets: ['noop'] } },
  })
  const hub = await m.startHub(m.loadConfigFile(m.writeConfig(dir.path, config)), m.createLogger({ level: 'warn' }))
  const driver = fork(SELF, ['--drive', hub.mqttUrl])
  const next = (): Promise<unknown> => new Promise((done) => driver.once('message', done))
  await next()
  const bursts: { cpuMs: number; perSecond: number }[] = []
  for (let round = 0; round <= TIMED_BURSTS; round++) {
    const cpu = process.cpuUsage()
    const start = performance.now()
    driver.send(round)
    await next()
    const used = process.cpuUsage(cpu)
    if (round > 0) bursts.push({ cpuMs: (used.user + used.system) / 1000 / BURST, perSecond: BURST / ((performance.now() - start) / 1000) })
  }
  driver.kill()
  await hub.stop()
  dir.remove()
  process.send?.(bursts)
}

/** `--drive URL`: the bench's worker and producer; one burst per message from the hub side. */
async function drive(url: string): Promise<void> {
  const { trinityClients } = await import('./trinity-clients.js')
  let seen = 0
  let finished: () => void = () => undefined
  const clients = await trinityClients({ worker: url, producer: url }, () => { if (++seen === BURST) finished() })
  process.on('message', (round: number) => {
    seen = 0
    const all = new Promise<void>((done) => { finished = done })
    void Promise.all(Array.from({ length: BURST }, (_, i) => clients.submit(`ab-${round}-${i}`))).then(() => all).then(() => process.send?.('done'))
  })
  process.send?.('ready')
}

async function side(root: string): Promise<{ cpuMs: number; perSecond: number }[]> {
  const child = fork(SELF, ['--hub', root], { execArgv: ['--max-semi-space-size=2', '--expose-gc'] })
  return new Promise((done, fail) => {
    child.once('message', (bursts) => done(bursts as { cpuMs: number; perSecond: number }[]))
    child.once('exit', (code) => fail(new Error(`the hub of ${root} exited with ${code}`)))
  })
}

const [mode, arg, ...rest] = process.argv.slice(2)
if (mode === '--hub' && arg !== undefined) await runHub(arg)
else if (mode === '--drive' && arg !== undefined) await drive(arg)
else if (mode !== undefined && arg !== undefined) {
  const roots = [mode, arg]
  const pairs = Number(rest[0] ?? '3')
  const all = new Map<string, { cpuMs: number; perSecond: number }[]>(roots.map((r) => [r, []]))
  for (let pair = 0; pair < pairs; pair++) {
    for (const root of roots) {
      const bursts = await side(root)
      all.get(root)?.push(...bursts)
      console.log(`${root.padEnd(12)} CPU ms/task ${bursts.map((b) => b.cpuMs.toFixed(3)).join(' ')} | tasks/s ${bursts.map((b) => b.perSecond.toFixed(0)).join(' ')}`)
    }
  }
  for (const [root, bursts] of all) {
    const mean = (f: (b: { cpuMs: number; perSecond: number }) => number): number => bursts.reduce((s, b) => s + f(b), 0) / bursts.length
    console.log(`${root}: mean of ${bursts.length} bursts: ${mean((b) => b.cpuMs).toFixed(3)} ms CPU per task, ${mean((b) => b.perSecond).toFixed(0)} tasks/s`)
  }
} else {
  console.error('usage: node dist/bench/ab.js ROOT_A ROOT_B [pairs]')
  process.exit(2)
}
