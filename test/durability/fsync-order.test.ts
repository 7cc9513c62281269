/**
 * `store.sync` governs every journal that backs an acknowledgement. Observed,
 * not assumed: the hub runs under strace, a real MQTT client publishes one
 * QoS 1 task submit, and the order of system calls on the hub's main thread
 * is read back.
 *
 * - `full`: between reading the client's PUBLISH and writing its PUBACK, the
 *   broker's journal (broker.db-wal) is fsynced; and between the coordinator
 *   reading the forwarded PUBLISH and writing its own PUBACK to the broker,
 *   the task store (trinity.db-wal) is fsynced.
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

/** The packet id of a QoS 1 PUBLISH, from its bytes as hex: after the fixed header and the topic. */
function packetId(hex: string): string {
  const bytes = Buffer.from(hex, 'hex')
  let at = 1
  while (((bytes[at] ?? 0) & 0x80) !== 0) at++ // the remaining-length varint [MQTT-2.2.3]
  at++
  const topicLength = bytes.readUInt16BE(at)
  return bytes.subarray(at + 2 + topicLength, at + 4 + topicLength).toString('hex')
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

  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `fsync-${sync}`, reconnectPeriod: 0 })
  const localPort = (client.stream as unknown as { localPort: number }).localPort
  const id = `fsync-${sync}-task`
  const packet = await client.publishAsync('trinity/task/submit', JSON.stringify({ type: 'general', content: 'durable?', id }), { qos: 1 })
  const messageId = packet?.messageId
  assert.ok(messageId !== undefined, 'the PUBACK carried a packet id')
  await waitFor(async () => (await http<TaskRecord>(httpUrl, 'GET', `/tasks/${id}`)).status === 200, 30_000, 'the task stored')
  await client.endAsync()
  process.kill(started.pid, 'SIGTERM')
  await exited

  const trace = readFileSync(traceFile, 'utf8')
  const calls = trace.split('\n').map(parse).filter((c): c is Syscall => c !== undefined)
  const hex = (n: number): string => n.toString(16).padStart(4, '0')
  // The broker's side of our connection: its fd shows `127.0.0.1:{port}->127.0.0.1:{localPort}`.
  const publisherSide = (c: Syscall): boolean => c.fdPath.includes(`:${port}->127.0.0.1:${localPort}]`)
  const publishRead = next(calls, -1, (c) => c.name === 'read' && publisherSide(c) && c.data.startsWith('32'))
  const pubackWrite = next(calls, publishRead, (c) => (c.name === 'write' || c.name === 'writev') && publisherSide(c) && c.data.includes(`4002${hex(messageId)}`))
  assert.ok(publishRead >= 0 && pubackWrite > publishRead, `the PUBLISH read and the PUBACK write are in the trace (${sync})`)
  const mainTid = (calls[publishRead] as Syscall).tid
  const brokerSynced = calls.slice(publishRead, pubackWrite).some((c) => c.tid === mainTid && isSync(c) && c.fdPath.endsWith('broker.db-wal'))

  // The coordinator's own connection: `127.0.0.1:{ephemeral}->127.0.0.1:{port}`. It reads the
  // forwarded PUBLISH (a QoS 1 PUBLISH on trinity/task/submit) and answers with its PUBACK.
  const coordinatorSide = (c: Syscall): boolean => c.fdPath.endsWith(`->127.0.0.1:${port}]`) && !c.fdPath.includes(`:${localPort}->`)
  const topicHex = Buffer.from('trinity/task/submit').toString('hex')
  const forwardedRead = next(calls, publishRead, (c) => c.name === 'read' && coordinatorSide(c) && c.data.includes(topicHex))
  const forwardedId = packetId(calls[forwardedRead]?.data ?? '')
  const coordinatorPuback = next(calls, forwardedRead, (c) => (c.name === 'write' || c.name === 'writev') && coordinatorSide(c) && c.data.includes(`4002${forwardedId}`))
  assert.ok(forwardedRead >= 0 && coordinatorPuback > forwardedRead, `the coordinator's read and PUBACK are in the trace (${sync})`)
  const storeSynced = calls.slice(forwardedRead, coordinatorPuback).some((c) => c.tid === mainTid && isSync(c) && c.fdPath.endsWith('trinity.db-wal'))
  return { brokerSynced, storeSynced, trace }
}

test('store.sync: full fsyncs the broker journal before the PUBACK, and the task store before the coordinator acknowledges', async () => {
  const { brokerSynced, storeSynced } = await observe('full')
  assert.equal(brokerSynced, true, 'broker.db-wal fsynced between the PUBLISH and its PUBACK')
  assert.equal(storeSynced, true, 'trinity.db-wal fsynced between the forwarded PUBLISH and the coordinator\'s PUBACK')
})

test('store.sync: normal acknowledges without an fsync (survives kill -9, not power loss)', async () => {
  const { brokerSynced, storeSynced } = await observe('normal')
  assert.equal(brokerSynced, false, 'no fsync of broker.db-wal before the PUBACK')
  assert.equal(storeSynced, false, 'no fsync of trinity.db-wal before the coordinator\'s PUBACK')
})
