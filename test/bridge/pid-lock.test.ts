/**
 * The bridge's pid lock under contention: processes that try it at the same
 * moment (real processes, released together), a stale lock of a dead pid, two
 * startBridge calls in one process, and two bridge processes on one workdir.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startBridge } from '../../bridges/git/bridge.js'
import { READY_STDIO, waitForReady } from '../../src/ready.js'
import { ROOT, startTestHub, testConfig, testScope, waitFor, writeConfig } from '../helpers/hub.js'
import { bareRepo, resolve, syncSection } from './helpers.js'

const { dir, cleanups } = testScope()
const CONTENDER = join(ROOT, 'dist/test/fixtures/pid-lock-contender.js')
const MAIN = join(ROOT, 'dist/bridges/git/main.js')

interface Contender { child: ChildProcess; out: () => string; exited: Promise<number | null> }

function contender(lock: string, go: string): Contender {
  const child = spawn(process.execPath, [CONTENDER, lock, go], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited })
  return { child, out: () => out, exited }
}

/** Starts `n` contenders, lets them all try at once, and returns who took the lock and what the others said. */
async function race(lock: string, n: number, round: string): Promise<{ winners: Contender[]; refusals: string[] }> {
  const go = join(dir.path, `go-${round}`)
  const all = Array.from({ length: n }, () => contender(lock, go))
  await waitFor(() => all.every((c) => c.out().includes('waiting')), 60_000, 'contenders waiting')
  writeFileSync(go, '')
  await waitFor(() => all.every((c) => /took|refused/.test(c.out())), 60_000, `round ${round}: every contender tried`)
  const winners = all.filter((c) => c.out().includes('took'))
  const losers = all.filter((c) => !c.out().includes('took'))
  for (const c of losers) assert.equal(await c.exited, 1, c.out())
  return { winners, refusals: losers.map((c) => c.out().split('\n').find((l) => l.startsWith('refused')) ?? c.out()) }
}

async function releaseAll(winners: Contender[]): Promise<void> {
  for (const w of winners) { w.child.stdin?.end(); await w.exited }
}

test('contenders released at the same moment: exactly one takes the lock, each other one names its pid', async () => {
  const lock = join(dir.path, 'race.pid')
  for (let round = 0; round < 5; round++) {
    const { winners, refusals } = await race(lock, 6, `fresh-${round}`)
    assert.equal(winners.length, 1, `round ${round}: ${winners.length} took the lock`)
    const pid = winners[0]?.child.pid
    assert.equal(readFileSync(lock, 'utf8'), String(pid))
    assert.deepEqual(refusals, refusals.map(() => `refused bridge workdir locked: another bridge (pid ${pid}) uses this workdir (${lock})`))
    await releaseAll(winners)
    assert.equal(existsSync(lock), false, 'released on the way out')
  }
  assert.deepEqual(readdirSync(dir.path).filter((f) => f.startsWith('race.pid.')), [], 'no temp files left behind')
})

test('a stale lock (its pid is dead) is taken over by exactly one of the contenders', async () => {
  const lock = join(dir.path, 'stale.pid')
  for (let round = 0; round < 5; round++) {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout
    writeFileSync(lock, dead)
    const { winners, refusals } = await race(lock, 6, `stale-${round}`)
    assert.equal(winners.length, 1, `round ${round}: ${winners.length} took the stale lock`)
    const pid = winners[0]?.child.pid
    assert.equal(readFileSync(lock, 'utf8'), String(pid))
    assert.deepEqual(refusals, refusals.map(() => `refused bridge workdir locked: another bridge (pid ${pid}) uses this workdir (${lock})`))
    await releaseAll(winners)
  }
  assert.deepEqual(readdirSync(dir.path).filter((f) => f.startsWith('stale.pid.')), [], 'no stale copies left behind')
})

test('two startBridge calls on one workdir at once, and two bridge processes: one runs, the other is refused naming its pid', async () => {
  const remote = bareRepo(dir.path)
  const workdir = join(dir.path, 'shared-workdir')
  const raw = await testConfig(join(dir.path, 'hub'), { log: { level: 'info' }, sync: syncSection({ computer: '1', peers: ['2'], remote, workdir, interval: '1h' }) })
  const hub = await startTestHub(raw)
  cleanups.push(() => hub.stop())
  const config = resolve(raw)
  const lock = join(workdir, 'state', 'bridge.pid')
  for (let round = 0; round < 3; round++) {
    const results = await Promise.allSettled([startBridge(config, { mqttUrl: hub.mqttUrl }), startBridge(config, { mqttUrl: hub.mqttUrl })])
    const running = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []))
    assert.deepEqual(results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code?: string }).code] : [])), ['TRINITY_ERR_WORKDIR_LOCKED'])
    assert.equal(running.length, 1, `round ${round}: ${refused.join('; ')}`)
    assert.deepEqual(refused, [`bridge workdir locked: another bridge (pid ${process.pid}) uses this workdir (${lock})`])
    await running[0]?.stop()
    assert.equal(existsSync(lock), false)
  }

  const configFile = writeConfig(dir.path, raw, 'two-bridges.yaml')
  for (let round = 0; round < 3; round++) {
    const bridges = [0, 1].map(() => {
      const child = spawn(process.execPath, [MAIN, '--config', configFile], { stdio: READY_STDIO, env: { ...process.env, TRINITY_MQTT_URL: hub.mqttUrl } })
      let out = ''
      child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
      child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
      const ready = waitForReady(child, 'bridge', 60_000).then((signal) => signal.pid, () => null)
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited })
      return { child, out: () => out, ready, exited }
    })
    const readyPids = await Promise.all(bridges.map((b) => b.ready))
    const winner = bridges.find((_, i) => readyPids[i] !== null)
    const loser = bridges.find((_, i) => readyPids[i] === null)
    assert.ok(winner !== undefined && loser !== undefined, `round ${round}: ready pids ${JSON.stringify(readyPids)}\n${bridges.map((b) => b.out()).join('\n')}`)
    assert.equal(await loser.exited, 1)
    await waitFor(() => loser.out().includes('bridge failed to start'), 20_000, 'the refusal logged')
    const refusal = loser.out().split('\n').find((l) => l.includes('bridge failed to start')) ?? ''
    assert.equal((JSON.parse(refusal) as { err: string }).err, `bridge workdir locked: another bridge (pid ${winner.child.pid}) uses this workdir (${lock})`)
    winner.child.kill('SIGTERM')
    assert.equal(await winner.exited, 0, winner.out())
  }
})
