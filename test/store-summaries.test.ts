/**
 * GET /tasks lists summaries from the store's summary column (issue #14): up
 * to 1000 of them used to cost parsing 1000 whole records, bodies and all.
 * The summaries must be exactly what the whole records (`full=true`) reduce
 * to, in every state a task can be listed in; no record is read to list them
 * (a record made unreadable on disk still lists); and a trinity.db made with
 * the schema from before the column opens, is filled once, and lists the same.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { TaskList } from '../src/contract/http.js'
import type { TaskRecord, TaskSummary } from '../src/contract/payloads/task.js'
import { summarizeTask } from '../src/contract/task-summary.js'
import { STORE_FILE, SqliteStore } from '../src/coordinator/sqlite-store.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { LIVENESS_FLOOR_MS, http, startTestHub, testConfig, testScope, waitFor } from './helpers/hub.js'

const { dir, cleanups } = testScope()

/** The schema of trinity.db before tasks had a summary column, as that store created it. */
const OLD_SCHEMA = `
  CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    record TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, updated_at);
  CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ts INTEGER NOT NULL,
    record TEXT NOT NULL
  );
`

const STATES = ['queued', 'assigned', 'running', 'needs_input', 'completed', 'failed', 'cancelled'] as const

/** Whole records as summaries, through JSON as the wire carries them. */
function reduced(records: TaskRecord[]): TaskSummary[] {
  return records.map((r) => JSON.parse(JSON.stringify(summarizeTask(r))) as TaskSummary)
}

async function lists(hub: Hub): Promise<{ summaries: TaskSummary[]; records: TaskRecord[] }> {
  const summaries = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?limit=1000')
  const full = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?full=true&limit=100')
  assert.equal(summaries.status, 200)
  assert.equal(full.status, 200)
  return { summaries: summaries.body.tasks as TaskSummary[], records: full.body.tasks as TaskRecord[] }
}

/** A hub with tasks in every listed state, bodies big enough to be cut in their previews; returns its records. */
async function hubWithTasks(dataDir: string): Promise<{ hub: Hub; c1: TestInstance }> {
  const hub = await startTestHub(await testConfig(dataDir, {
    instances: [{ id: 'c1' }, { id: 'c2' }],
    routes: { general: { targets: ['c1'] }, elsewhere: { targets: ['c2'] } },
    tasks: { lease: '120s' }, health: { timeout: '30s', degradedAfter: '20s', missesBeforeOffline: 5 },
  }))
  cleanups.push(() => hub.stop())
  const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', capabilities: ['general'], concurrency: 20, manual: true })
  cleanups.push(() => c1.close())
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', LIVENESS_FLOOR_MS, 'c1 online')
  const big = (id: string) => ({ id, text: 'x'.repeat(50_000) })
  // c2 never comes: this one stays queued.
  assert.equal((await http(hub.httpUrl, 'POST', '/task', { id: 't-queued', type: 'elsewhere', content: big('t-queued'), priority: 'high' })).status, 202)
  const ids = ['t-assigned', 't-running', 't-needs-input', 't-answered', 't-completed', 't-failed', 't-cancelled']
  for (const id of ids) assert.equal((await http(hub.httpUrl, 'POST', '/task', { id, type: 'general', content: id === 't-completed' ? 'short text' : big(id) })).status, 202)
  await c1.waitForTasks(ids.length, LIVENESS_FLOOR_MS)
  const lease = (id: string): string => {
    const task = c1.received.find((t) => t.id === id)
    assert.ok(task !== undefined, id)
    return task.leaseToken
  }
  const report = async (id: string, fields: Record<string, unknown>): Promise<void> => {
    await c1.report({ taskId: id, leaseToken: lease(id), state: 'started' })
    if (Object.keys(fields).length > 0) await c1.report({ taskId: id, leaseToken: lease(id), ...fields } as never)
  }
  await report('t-running', { state: 'progress', output: { step: 'p'.repeat(500) } })
  await report('t-needs-input', { state: 'needs_input', question: 'Deploy to production?', choices: ['yes', 'no'] })
  await report('t-answered', { state: 'needs_input', question: 'Which region?' })
  await report('t-completed', { state: 'completed', output: { rows: 'r'.repeat(20_000) } })
  await report('t-failed', { state: 'failed', error: 'bad input', retryable: false })
  const state = (id: string): string | undefined => hub.coordinator.scheduler.get(id)?.state
  await waitFor(() => state('t-answered') === 'needs_input' && state('t-needs-input') === 'needs_input' && state('t-completed') === 'completed' && state('t-failed') === 'failed' && state('t-running') === 'running',
    LIVENESS_FLOOR_MS, 'the reports applied')
  assert.equal((await http(hub.httpUrl, 'POST', '/tasks/t-answered/respond', { answer: { region: 'eu-west-1', note: 'a'.repeat(400) } })).status, 202)
  assert.equal((await http(hub.httpUrl, 'POST', '/tasks/t-cancelled/cancel')).status, 200)
  return { hub, c1 }
}

test('GET /tasks: the summaries are the whole records (full=true) reduced, in every state, and listing them reads no record', async () => {
  const dataDir = join(dir.path, 'states')
  const { hub } = await hubWithTasks(dataDir)
  const { summaries, records } = await lists(hub)
  assert.equal(records.length, 8)
  assert.deepEqual(new Set(records.map((r) => r.state)), new Set(STATES), 'every state is covered')
  assert.ok(records.some((r) => r.assignments[0]?.input?.answeredAt !== undefined), 'an answered question (answerPreview) is covered')
  assert.ok(records.some((r) => r.assignments[0]?.progress !== undefined), 'a progress report (progressPreview) is covered')
  assert.deepEqual(summaries, reduced(records))
  // The same for a state filter.
  const running = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?state=running')
  assert.deepEqual(running.body.tasks, reduced(records.filter((r) => r.state === 'running')))

  // Spoil a finished task's record on disk (a second connection, as WAL allows): its summary still lists, so the list never read it.
  const db = new Database(join(dataDir, STORE_FILE))
  try {
    assert.equal(db.prepare(`UPDATE tasks SET record = 'not json' WHERE id = 't-completed'`).run().changes, 1)
  } finally {
    db.close()
  }
  const after = await http<TaskList>(hub.httpUrl, 'GET', '/tasks?limit=1000')
  assert.equal(after.status, 200, JSON.stringify(after.body))
  assert.deepEqual(after.body.tasks, summaries)
  assert.equal((await http(hub.httpUrl, 'GET', '/tasks?full=true')).status, 500, 'whereas whole records do read it')
})

test('a trinity.db with the schema from before the summary column: opened, filled once at open, and listed exactly as its records reduce', async () => {
  // Real records, from a hub, written into a store made with the old schema.
  const { hub: first, c1 } = await hubWithTasks(join(dir.path, 'source'))
  const { records } = await lists(first)
  await c1.close()
  await first.stop()
  const dataDir = join(dir.path, 'old-schema')
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, STORE_FILE)
  const old = new Database(file)
  old.pragma('journal_mode = WAL')
  old.exec(OLD_SCHEMA)
  const insert = old.prepare('INSERT INTO tasks (id, state, type, created_at, updated_at, record) VALUES (?, ?, ?, ?, ?, ?)')
  for (const r of [...records].reverse()) insert.run(r.id, r.state, r.type, r.createdAt, r.updatedAt, JSON.stringify(r))
  old.close()

  const hub = await startTestHub(await testConfig(dataDir, {
    instances: [{ id: 'c1' }, { id: 'c2' }], routes: { general: { targets: ['c1'] }, elsewhere: { targets: ['c2'] } }, tasks: { lease: '120s' },
  }))
  cleanups.push(() => hub.stop())
  const listed = await lists(hub)
  assert.deepEqual(listed.records, records, 'the records as they were')
  assert.deepEqual(listed.summaries, reduced(records))
  assert.equal((await http<TaskRecord>(hub.httpUrl, 'GET', '/tasks/t-running')).body.state, 'running', 'unfinished tasks resumed')
  await hub.stop()

  // Filled once: every row has its summary; opening again changes nothing.
  const check = new Database(file, { readonly: true })
  const rows = check.prepare('SELECT id, summary FROM tasks').all() as { id: string; summary: string | null }[]
  check.close()
  assert.equal(rows.length, records.length)
  for (const row of rows) assert.notEqual(row.summary, null, row.id)
  const again = new SqliteStore({ file, sync: 'normal' })
  assert.deepEqual(again.listSummaries({ limit: 1000 }), reduced(records))
  again.close()
})

test('a figure: listing stored summaries against parsing the records they come from (printed, never asserted)', () => {
  const store = new SqliteStore({ file: join(dir.path, 'figure.db'), sync: 'normal' })
  const leg = { targets: ['c1'], state: 'completed' as const, instance: 'c1', attempts: 1, leaseToken: null, leaseExpiresAt: null, notBefore: 0, tried: [], output: { text: 'o'.repeat(20_000) } }
  for (let i = 0; i < 300; i++) {
    store.saveTask({ id: `f-${i}`, type: 'general', content: { text: 'c'.repeat(50_000) }, priority: 'normal', state: 'completed', strategy: 'least-loaded', createdAt: i, updatedAt: i, maxAttempts: 3, assignments: [leg], result: leg.output })
  }
  let at = performance.now()
  const summaries = store.listSummaries({ limit: 1000 })
  const fromColumn = performance.now() - at
  at = performance.now()
  const fromRecords = store.listTasks({ limit: 1000 }).map((t) => summarizeTask(t))
  const parsing = performance.now() - at
  assert.deepEqual(JSON.parse(JSON.stringify(summaries)), JSON.parse(JSON.stringify(fromRecords)))
  console.log(`# 300 tasks of ~70 KB: summaries from the column ${fromColumn.toFixed(1)} ms, from the records ${parsing.toFixed(1)} ms`)
  store.close()
})
