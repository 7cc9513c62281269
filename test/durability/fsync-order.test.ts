/**
 * `store.sync` governs every journal that backs an acknowledgement. Observed,
 * not assumed: the hub runs under strace, a real MQTT client publishes one
 * QoS 1 task submit, and the order of system calls on the hub's main thread
 * is read back.
 *
 * - `full`: between reading a task submission's PUBLISH and writing its
 *   PUBACK, the task store (trinity.db-wal) is fsynced (the coordinator reads
 *   the bus in-process, so the submission's only journal is the task store);
 *   and between reading a PUBLISH queued for a persistent session and writing
 *   its PUBACK, the broker's journal (broker.db-wal) is fsynced.
 * - `normal`: neither journal is fsynced in those windows (what kill -9
 *   survives, and power loss may not).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { READY_STDIO, waitForReady } from '../../src/ready.js'
import { CLI, freePort, http, testConfig, testScope, waitFor, writeConfig } from '../helpers/hub.js'

const { dir, cleanups } = testScope()

interface Syscall { tid: number; name: string; fdPath: string; data: string }

/** `\x2f\x74…` (strace -xx) as text. */
function unhex(escaped: string): string {
  return escaped.replace(/\\x([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
}

/**
 * One line of `strace -f -yy -xx` output, as far as this test needs it: the
 * thread, the call, the fd's path (a file, or `TCP:[local->peer]`) and the
 * bytes as hex (a writev's iovecs joined).
 */
function parse(line: string): Syscall | undefined {
  const m = /^(\d+)\s+(\w+)\((\d+)<(TCP:\[[^\]]*\]|[^>]*)>(.*)$/.exec(line)
  if (m === null) return undefined
  const rest = m[5] as string
  const buffers = [...rest.matchAll(/"((?:\\x[0-9a-f]{2})*)"/g)].map((b) => (b[1] as string).replaceAll('\\x', ''))
  const data = m[2] === 'writev' ? buffers.join('') : (buffers[0] ?? '')
  return { tid: Number(m[1]), name: m[2] as string, fdPath: unhex(m[4] as string), data }
}

/** Index of the first call matching `match` after `from`, or -1. */
function next(calls: Syscall[], from: number, match: (c: Syscall) => boolean): number {
  for (let i = from + 1; i < calls.length; i++) if (match(calls[i] as Syscall)) return i
  return -1
}

const isSync = (c: Syscall): boolean => c.name === 'fsync' || c.name === 'fdatasync'

async function observe(sync: 'normal' | 'full'): Promise<{ brokerSynced: boolean; storeSynced: boolean; trace: string }> {
  assert.equal(spawnSync('strace', ['-V']).status, 0, 'strace is installed (scripts/ensure-system-deps.mjs installs it)')
  const dataDir = join(dir.path, sync)
  const port = await freePort()
  const file = writeConfig(dir.path, await testConfig(dataDir, {
    broker: { port },
    store: { sync },
    log: { level: 'info' },
  }), `${sync}.yaml`)
  const traceFile = join(dir.path, `${sync}.strace`)
  const child = spawn('strace', ['-f', '-yy', '-xx', '-s', '256', '-o', traceFile, '-e', 'trace=fsync,fdatasync,read,write,writev',
    process.execPath, CLI, 'hub', '--config', file], { stdio: READY_STDIO, env: { ...process.env, CI: 'true' } })
  // The channel's fd passes through strace to the hub, which signals on it (src/ready.ts).
  const ready = waitForReady(child, 'hub', 60_000)
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  cleanups.push(async () => {
    if (child.exitCode !== null) return
    const pid = /"pid":(\d+)/.exec(output)?.[1]
    if (pid !== undefined) process.kill(Number(pid), 'SIGKILL')
    child.kill('SIGKILL')
    await exited
  })
  const started = await ready.catch((err: Error) => assert.fail(`hub (${sync}) under strace: ${err.message}\n${output}`))
  assert.equal(child.exitCode, null, output)
  // strace passes a signal on to nobody: the hub itself (its pid is in its ready signal) is stopped.
  const httpUrl = started.http

  // A persistent session the broker journals QoS 1 messages for (what backs an instance's inbox).
  const probeTopic = 'trinity/fsync/probe'
  const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `fsync-sub-${sync}`, clean: false, reconnectPeriod: 0 })
  await subscriber.subscribeAsync(probeTopic, { qos: 1 })
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `fsync-${sync}`, reconnectPeriod: 0 })
  const localPort = (client.stream as unknown as { localPort: number }).localPort
  const id = `fsync-${sync}-task`
  const submitId = (await client.publishAsync('trinity/task/submit', JSON.stringify({ type: 'general', content: 'durable?', id }), { qos: 1 }))?.messageId
  const probeId = (await client.publishAsync(probeTopic, 'queued', { qos: 1 }))?.messageId
  assert.ok(submitId !== undefined && probeId !== undefined, 'the PUBACKs carried packet ids')
  await waitFor(async () => (await http<TaskRecord>(httpUrl, 'GET', `/tasks/${id}`)).status === 200, 30_000, 'the task stored')
  await client.endAsync()
  await subscriber.endAsync()
  process.kill(started.pid, 'SIGTERM')
  await exited

  const trace = readFileSync(traceFile, 'utf8')
  const calls = trace.split('\n').map(parse).filter((c): c is Syscall => c !== undefined)
  const hex = (n: number): string => n.toString(16).padStart(4, '0')
  // The broker's side of our connection: its fd shows `127.0.0.1:{port}->127.0.0.1:{localPort}`.
  const publisherSide = (c: Syscall): boolean => c.fdPath.includes(`:${port}->127.0.0.1:${localPort}]`)
  /** Whether `wal` was fsynced on the main thread between the read of the PUBLISH (from `after` on) and the write of its PUBACK. */
  const syncedBeforePuback = (after: number, messageId: number, wal: string): { synced: boolean; puback: number } => {
    const publishRead = next(calls, after, (c) => c.name === 'read' && publisherSide(c) && c.data.startsWith('32'))
    const puback = next(calls, publishRead, (c) => (c.name === 'write' || c.name === 'writev') && publisherSide(c) && c.data.includes(`4002${hex(messageId)}`))
    assert.ok(publishRead >= 0 && puback > publishRead, `the PUBLISH read and its PUBACK write are in the trace (${sync}, ${wal})`)
    const mainTid = (calls[publishRead] as Syscall).tid
    return { synced: calls.slice(publishRead, puback).some((c) => c.tid === mainTid && isSync(c) && c.fdPath.endsWith(wal)), puback }
  }
  const submit = syncedBeforePuback(-1, submitId, 'trinity.db-wal')
  const probe = syncedBeforePuback(submit.puback, probeId, 'broker.db-wal')
  return { brokerSynced: probe.synced, storeSynced: submit.synced, trace }
}

test('store.sync: full fsyncs the broker journal before the PUBACK, and the task store before the coordinator acknowledges', async () => {
  const { brokerSynced, storeSynced } = await observe('full')
  assert.equal(brokerSynced, true, 'broker.db-wal fsynced between a queued PUBLISH and its PUBACK')
  assert.equal(storeSynced, true, 'trinity.db-wal fsynced between the submission\'s PUBLISH and its PUBACK')
})

test('store.sync: normal acknowledges without an fsync (survives kill -9, not power loss)', async () => {
  const { brokerSynced, storeSynced } = await observe('normal')
  assert.equal(brokerSynced, false, 'no fsync of broker.db-wal before the PUBACK')
  assert.equal(storeSynced, false, 'no fsync of trinity.db-wal before the submission\'s PUBACK')
})
