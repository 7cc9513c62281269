/**
 * Git bridge benchmarks, each beside a baseline measured in the same run:
 * - one round carrying K outgoing and K incoming messages (fetch, publish
 *   the incoming on the bus, append the outgoing, commit, push), beside
 *   plain `git pull --rebase` + write + `git add` + `git commit` + `git push`
 *   of the same commits, from the same starting state;
 * - parsing a history of 100,000 messages, beside JSON.parse of the same
 *   messages as JSON lines;
 * - repository growth per 1,000 messages (loose, and after `git gc`),
 *   beside the bytes of their bodies.
 * Real git on local disk; the hub (its embedded broker) in its own process,
 * as in production, so the broker's work on the round's 2,000 publishes is
 * not charged to the bridge's event loop.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { topicsFor } from '../src/contract/topics.js'
import { startBridge } from '../bridges/git/bridge.js'
import { messageFileName, parseMessages, serializeMessageFile, type FileMessage } from '../bridges/git/format.js'
import { spawnHub, tempDir, testConfig, waitFor, writeConfig } from '../test/helpers/hub.js'
import { bareRepo, git, GIT_ENV, humanClone, Recorder, resolve, syncSection } from '../test/bridge/helpers.js'
import type { Row } from './hub.js'

const WORDS = 'the build deploy staging test green red disk free memory task queue agent report failed passed retry lease instance health online offline check version release branch merge commit push pull node python service timeout error warning please can you run again after before today now soon ready done waiting blocked on it ok'.split(' ')

/** ~200 bytes of word salad, deterministic per i (prose compresses about like this; repeated text would flatter git). */
function body(i: number): string {
  let seed = (i + 1) * 2_654_435_761
  const words: string[] = [`message ${i}:`]
  while (words.join(' ').length < 200) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
    words.push(WORDS[seed % WORDS.length] ?? 'x')
  }
  return words.join(' ').slice(0, 200)
}

function messages(from: string, to: string, k: number, offset = 0): FileMessage[] {
  return Array.from({ length: k }, (_, i) => ({ id: `${from}-${to}-${offset + i + 1}`, seq: offset + i + 1, from, to, ts: 1_764_093_600_000 + i, message: body(i) }))
}

function du(path: string): number {
  let total = 0
  for (const name of readdirSync(path)) {
    const p = join(path, name)
    const s = statSync(p)
    total += s.isDirectory() ? du(p) : s.size
  }
  return total
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

/** One round with k outgoing and k incoming messages, and plain git doing the same from the same state. */
async function roundOnce(k: number): Promise<{ bridgeMs: number; gitMs: number; growthLoose: number; bodyBytes: number }> {
  const dir = tempDir('trinity-bench-bridge-')
  const hub = await spawnHub(writeConfig(dir.path, await testConfig(join(dir.path, 'hub'), { broker: { persistence: 'memory' }, log: { level: 'info' } }), 'hub.yaml'))
  try {
    const remote = bareRepo(dir.path)
    const config = resolve(await testConfig(join(dir.path, 'data'), { sync: syncSection({ computer: '1', peers: ['2'], remote, workdir: join(dir.path, 'sync'), interval: '1h', retention: 1_000_000 }) }))
    const bridge = await startBridge(config, { mqttUrl: hub.mqttUrl })
    try {
      await waitFor(() => bridge.rounds.length > 0, 20_000, 'first round')
      // The baseline's clone, at the same state as the bridge's.
      const plain = humanClone(remote, join(dir.path, 'plain'))
      // Computer 2 pushes k messages for computer 1.
      const peer = humanClone(remote, join(dir.path, 'peer'))
      mkdirSync(join(peer, 'coordination/messages'), { recursive: true })
      writeFileSync(join(peer, messageFileName('2', '1')), serializeMessageFile('2', '1', messages('2', '1', k)))
      git(peer, 'add', '-A')
      git(peer, 'commit', '-qm', 'incoming')
      git(peer, 'push', '-q', 'origin', 'main')
      const copy = join(dir.path, 'copy.git')
      cpSync(remote, copy, { recursive: true })
      git(plain, 'remote', 'set-url', 'origin', copy)
      // k outgoing messages queued through the bus.
      const sender = await Recorder.start(hub.mqttUrl, [])
      const t = topicsFor()
      await Promise.all(Array.from({ length: k }, (_, i) => sender.client.publishAsync(t.computerSend('2'), JSON.stringify({ id: `out-${i}`, message: body(i) }), { qos: 1 })))
      await sender.stop()
      await waitFor(() => bridge.status().queued === k, 30_000, 'outgoing queued')
      const sizeBefore = du(remote)

      const report = await bridge.syncNow('bench')
      if (!report.ok || report.received !== k || report.pushed !== k) throw new Error(`bench round: ${JSON.stringify(report)}`)
      const bridgeMs = report.endedAt - report.startedAt
      if (process.env['BENCH_VERBOSE'] !== undefined) console.log(JSON.stringify(report.phases))

      const outgoing = serializeMessageFile('1', '2', messages('1', '2', k))
      const started = performance.now()
      execFileSync('git', ['pull', '-q', '--rebase', 'origin', 'main'], { cwd: plain, env: GIT_ENV })
      mkdirSync(join(plain, 'coordination/messages'), { recursive: true })
      writeFileSync(join(plain, messageFileName('1', '2')), outgoing)
      execFileSync('git', ['add', '-A'], { cwd: plain, env: GIT_ENV })
      execFileSync('git', ['commit', '-qm', 'outgoing'], { cwd: plain, env: GIT_ENV })
      execFileSync('git', ['push', '-q', 'origin', 'HEAD:main'], { cwd: plain, env: GIT_ENV, stdio: 'ignore' })
      const gitMs = performance.now() - started

      const growthLoose = du(remote) - sizeBefore
      return { bridgeMs, gitMs, growthLoose, bodyBytes: Buffer.byteLength(messages('1', '2', k).map((m) => m.message).join('')) }
    } finally {
      await bridge.stop()
    }
  } finally {
    await hub.kill('SIGTERM')
    dir.remove()
  }
}

/** Growth of a gc'd repo per 1,000 messages: ten rounds of 1,000 appended to one file, then gc. */
function growth(perRound: number, rounds: number): { loosePer1k: number; packedPer1k: number } {
  const dir = tempDir('trinity-bench-growth-')
  try {
    const remote = bareRepo(dir.path)
    const clone = humanClone(remote, join(dir.path, 'clone'))
    writeFileSync(join(clone, 'README'), 'x')
    git(clone, 'add', '-A')
    git(clone, 'commit', '-qm', 'root')
    git(clone, 'push', '-q', 'origin', 'main')
    execFileSync('git', ['gc', '-q'], { cwd: remote, env: GIT_ENV })
    const start = du(remote)
    mkdirSync(join(clone, 'coordination/messages'), { recursive: true })
    for (let r = 1; r <= rounds; r++) {
      writeFileSync(join(clone, messageFileName('1', '2')), serializeMessageFile('1', '2', messages('1', '2', perRound * r)))
      git(clone, 'add', '-A')
      git(clone, 'commit', '-qm', `round ${r}`)
      git(clone, 'push', '-q', 'origin', 'main')
    }
    const loose = du(remote) - start
    execFileSync('git', ['gc', '-q'], { cwd: remote, env: GIT_ENV })
    const packed = du(remote) - start
    const per1k = (bytes: number): number => bytes / ((perRound * rounds) / 1000)
    return { loosePer1k: per1k(loose), packedPer1k: per1k(packed) }
  } finally {
    dir.remove()
  }
}

export async function benchBridge(options: { k: number; history: number }): Promise<Row[]> {
  const rows: Row[] = []
  const runs = []
  for (let i = 0; i < 5; i++) runs.push(await roundOnce(options.k))
  const bridgeMs = median(runs.map((r) => r.bridgeMs))
  const gitMs = median(runs.map((r) => r.gitMs))
  rows.push({
    name: `round: ${options.k} out + ${options.k} in (median of 5)`, value: `${bridgeMs.toFixed(0)} ms`,
    baselineName: 'plain git pull + commit + push', baseline: `${gitMs.toFixed(0)} ms`, ratio: `${(bridgeMs / gitMs).toFixed(2)}x (+${(100 * (bridgeMs / gitMs - 1)).toFixed(0)}%)`,
  })

  // Parse a history of `history` messages, in files of 1,000 (the default retention), beside JSON lines.
  const all = messages('2', '1', options.history)
  const files: string[] = []
  for (let i = 0; i < all.length; i += 1000) files.push(serializeMessageFile('2', '1', all.slice(i, i + 1000)))
  const jsonl = all.map((m) => JSON.stringify(m)).join('\n')
  const parseMs: number[] = []
  const jsonMs: number[] = []
  for (let r = 0; r < 3; r++) {
    let t0 = performance.now()
    let count = 0
    for (const f of files) count += parseMessages(f).messages.length
    parseMs.push(performance.now() - t0)
    if (count !== all.length) throw new Error(`parsed ${count} of ${all.length}`)
    t0 = performance.now()
    let n = 0
    for (const line of jsonl.split('\n')) n += (JSON.parse(line) as FileMessage).seq > 0 ? 1 : 0
    jsonMs.push(performance.now() - t0)
    if (n !== all.length) throw new Error('json count')
  }
  rows.push({
    name: `parse ${options.history.toLocaleString('en')} messages`, value: `${median(parseMs).toFixed(0)} ms`,
    baselineName: 'JSON.parse of the same as JSON lines', baseline: `${median(jsonMs).toFixed(0)} ms`, ratio: `${(median(parseMs) / median(jsonMs)).toFixed(2)}x`,
  })

  const bodyPer1k = runs[0] === undefined ? NaN : runs[0].bodyBytes / (options.k / 1000)
  const loosePer1k = median(runs.map((r) => r.growthLoose / (options.k / 1000)))
  rows.push({
    name: 'remote growth per 1,000 messages (one round, loose objects)', value: `${(loosePer1k / 1024).toFixed(0)} KiB`,
    baselineName: 'their bodies', baseline: `${(bodyPer1k / 1024).toFixed(0)} KiB`, ratio: `${(loosePer1k / bodyPer1k).toFixed(2)}x`,
  })
  const g = growth(options.k, 10)
  rows.push({
    name: `remote growth per 1,000 messages (10 rounds of ${options.k} appended, loose → after git gc)`, value: `${(g.loosePer1k / 1024).toFixed(0)} KiB → ${(g.packedPer1k / 1024).toFixed(0)} KiB`,
    baselineName: 'their bodies', baseline: `${(bodyPer1k / 1024).toFixed(0)} KiB`, ratio: `${(g.packedPer1k / bodyPer1k).toFixed(2)}x after gc`,
  })
  return rows
}
