/**
 * The unified log: child lines become records of the supervisor's stream
 * with service / instance fields, and the optional log file rotates by size
 * and keeps a bounded number of files. Also how command lines are run.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createLoggerWithFile } from '../../src/log.js'
import { shellLine } from '../../src/supervisor/child.js'
import { relayLine } from '../../src/supervisor/log-relay.js'
import { testScope, waitFor } from '../helpers/hub.js'

const { dir } = testScope()

function capture(): { log: pino.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = []
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { records.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  return { log: pino({ level: 'trace' }, sink), records }
}

test('a child pino line keeps its level, message and fields under the child\'s service', async () => {
  const { log, records } = capture()
  const child = log.child({ service: 'araya', instance: 'araya' })
  relayLine(child, 'stdout', JSON.stringify({ level: 50, time: 1, pid: 42, hostname: 'h', name: 'araya', instance: 'araya', msg: 'boom', taskId: 't1' }), 'araya')
  relayLine(log.child({ service: 'hub' }), 'stdout', JSON.stringify({ level: 30, service: 'coordinator', instance: 'builder', msg: 'instance health changed' }))
  relayLine(child, 'stderr', 'Traceback (most recent call last):')
  relayLine(child, 'stdout', '{not json')
  relayLine(child, 'stdout', '   ')
  await waitFor(() => records.length === 4, 2000, 'records')
  const [boom, health, stderr, notJson] = records
  assert.deepEqual([boom?.['level'], boom?.['msg'], boom?.['service'], boom?.['instance'], boom?.['taskId'], boom?.['pid'] === 42], [50, 'boom', 'araya', 'araya', 't1', false])
  assert.deepEqual([health?.['service'], health?.['component'], health?.['instance']], ['hub', 'coordinator', 'builder'])
  assert.deepEqual([stderr?.['level'], stderr?.['msg'], stderr?.['stream']], [40, 'Traceback (most recent call last):', 'stderr'])
  assert.deepEqual([notJson?.['level'], notJson?.['msg']], [30, '{not json'])
})

test('log.file rotates at maxSize and keeps maxFiles rotated files', async () => {
  const file = join(dir.path, 'logs', 'trinity.log')
  const log = await createLoggerWithFile({ level: 'info', pretty: false }, { file, maxSize: '1k', maxFiles: 2 })
  // As a real log arrives: in bursts. pino-roll checks the size after each write to disk, so each
  // burst waits until the last one is on disk (a fixed pause let a loaded machine merge bursts).
  const logs = join(dir.path, 'logs')
  const onDisk = (n: number): boolean => existsSync(logs) && readdirSync(logs).some((f) => readFileSync(join(logs, f), 'utf8').includes(`"n":${n},`))
  for (let n = 0; n < 200; n++) {
    log.info({ n, pad: 'x'.repeat(40) }, 'line')
    if (n % 20 === 19) await waitFor(() => onDisk(n), 60_000, `line ${n} on disk`)
  }
  await waitFor(() => readdirSync(join(dir.path, 'logs')).length >= 3, 5000, 'rotation')
  // Old files go by an unlink after the rotation: kept files settle at maxFiles + the live one.
  await waitFor(() => readdirSync(logs).length <= 3, 60_000, `at most 3 files kept (${readdirSync(logs).join(', ')})`)
  const files = readdirSync(logs)
  // Bounded: the size limit plus at most one burst written before the check.
  for (const f of files) assert.ok(statSync(join(dir.path, 'logs', f)).size < 4 * 1024, `${f} is bounded`)
})

test('plain command lines are exec\'d (the PID is the program\'s); compound ones run under sh', () => {
  assert.equal(shellLine('node dist/src/fleet/instance.js araya'), 'exec node dist/src/fleet/instance.js araya')
  assert.equal(shellLine('python3 "my worker.py" --port=8004'), 'exec python3 "my worker.py" --port=8004')
  assert.equal(shellLine('test -f x && exec node a.js || exit 3'), 'test -f x && exec node a.js || exit 3')
  assert.equal(shellLine('node a.js > out.log'), 'node a.js > out.log')
})
