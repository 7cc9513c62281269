/**
 * What both pages share at start: the topic contract for the prefix the hub
 * wrote into the page, the store, the bus connection, one HTTP fill of the
 * tables on every (re)connect (state changed while the bus was away), and the
 * parts every page has: the disconnected banner, the activity log and the
 * notice line where actions report.
 */
import type { Static, TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { InstanceList, MessageList, TaskList } from '../../src/contract/http.js'
import { useCompiler, validate } from '../../src/contract/payloads/validate.js'
import { topicsFor, type TopicContract } from '../../src/contract/topics.js'
import { call } from './api.js'
import { connectBus } from './bus.js'
import { byId, clock, el, reconcile, setAttr, setText } from './dom.js'
import { frameScheduler, SectionThrottle } from './frame.js'
import { signIn } from './login.js'
import { MAX_ROWS, Store, type Section } from './store.js'
import { symbolOf, type Tone } from './tone.js'

// A page compiles the contract's schemas with TypeBox itself (validate.ts: a browser has no `require`).
useCompiler(Compile)

export interface App {
  readonly store: Store
  readonly topics: TopicContract
  /** `sync.enabled` on this hub (the server writes it into the page): Sync now is offered only then. */
  readonly syncEnabled: boolean
  /** Says what an action did, in the notice line and the activity log. */
  notify(ok: boolean, text: string): void
}

/**
 * Long lists redraw at most every LIST_INTERVAL_MS: under a burst, re-laying
 * out hundreds of table rows every frame is what made the detail view fall
 * behind the bus. States (instances, connection, metrics) still draw on the
 * next frame, so a change shows at once.
 */
const LIST_INTERVAL_MS = 250
const LISTS: ReadonlySet<Section> = new Set<Section>(['tasks', 'messages', 'activity'])

export function boot(draw: (dirty: ReadonlySet<Section>, app: App) => void): App {
  const meta = document.querySelector('meta[name="trinity-topic-prefix"]')
  const topics = topicsFor(meta?.getAttribute('content') ?? undefined)
  let app: App | undefined
  const lists = new SectionThrottle<Section>(LISTS, LIST_INTERVAL_MS, (section) => store.mark(section))
  const store: Store = new Store(frameScheduler(() => {
    const dirty = lists.filter(store.takeDirty())
    if (app === undefined) return
    drawCommon(dirty, store)
    draw(dirty, app)
  }))
  app = {
    store,
    topics,
    syncEnabled: document.querySelector('meta[name="trinity-sync"]')?.getAttribute('content') === 'on',
    notify(ok, text) {
      const notice = byId('notice')
      setText(notice, `${symbolOf(ok ? 'ok' : 'bad')} ${text}`)
      setAttr(notice, 'data-tone', ok ? 'ok' : 'bad')
      store.log(ok ? 'ok' : 'bad', text)
    },
  }
  // Signed in first (login.ts): on a hub with tokens, the bus login and every call need it.
  void signIn().then((session) => connectBus(topics, session.bus, {
    message: (topic, payload) => store.apply(topic, payload),
    garbage: (topic, reason) => store.log('warn', `${topic}: payload dropped: ${reason}`),
    connection: (connected, reason) => {
      const was = store.connected
      store.setConnected(connected, reason)
      if (connected && !was) void fill(store)
    },
  }))
  // "12s ago" cells age without bus traffic; redraw them now and then (no request is made).
  setInterval(() => { store.mark('instances'); store.mark('computers'); store.mark('platform') }, 5000)
  store.mark('connection')
  return app
}

/**
 * A GET answer decoded with its schema from the contract (src/contract/http.ts);
 * null, with the reason in the activity log, when the call fails or the answer does not match.
 */
async function get<T extends TSchema>(store: Store, schema: T, path: string): Promise<Static<T> | null> {
  const r = await call('GET', path)
  if (!r.ok) {
    store.log('warn', `GET ${path}: ${r.message}`)
    return null
  }
  const decoded = validate(schema, r.body)
  if (decoded.ok) return decoded.value
  store.log('warn', `GET ${path}: answer dropped: ${decoded.reason}`)
  return null
}

/** The one HTTP read of the tables; everything after comes from the bus. */
async function fill(store: Store): Promise<void> {
  const [instances, tasks, dead, asking, messages] = await Promise.all([
    get(store, InstanceList, '/instances'),
    get(store, TaskList, `/tasks?limit=${MAX_ROWS}`),
    get(store, TaskList, `/tasks?state=dead&limit=${MAX_ROWS}`),
    // The approval queue: a task may have waited for a person longer than the last MAX_ROWS changes.
    get(store, TaskList, `/tasks?state=needs_input&limit=${MAX_ROWS}`),
    get(store, MessageList, `/messages?limit=${MAX_ROWS}`),
  ])
  for (const view of instances?.instances ?? []) store.fillInstance(view)
  store.mark('instances')
  for (const task of [...(dead?.tasks ?? []), ...(asking?.tasks ?? []), ...(tasks?.tasks ?? [])].sort((a, b) => a.updatedAt - b.updatedAt)) {
    store.upsertTask(task, true)
  }
  for (const message of messages?.messages ?? []) store.addMessage(message, true)
}

function drawCommon(dirty: ReadonlySet<Section>, store: Store): void {
  setText(byId('events-seen'), String(store.events))
  if (dirty.has('connection')) {
    const banner = byId('bus-banner')
    banner.hidden = store.connected
    const state = byId('bus-state')
    setText(state, `${symbolOf(store.connected ? 'ok' : 'bad')} bus ${store.connected ? 'connected' : 'disconnected'}`)
    setAttr(state, 'data-tone', store.connected ? 'ok' : 'bad')
    document.body.dataset['bus'] = store.connected ? 'connected' : 'disconnected'
  }
  const log = document.getElementById('activity')
  if (dirty.has('activity') && log !== null) {
    reconcile(log, store.activity, (e) => String(e.seq),
      (e) => el('li', { 'data-tone': e.tone }, el('time', {}, clock(e.at)), ' ', el('span', { class: 'tag' }, tag(e.tone)), ' ', e.text),
      () => undefined)
  }
}

function tag(tone: Tone): string {
  switch (tone) {
    case 'ok': return '[ OK ]'
    case 'warn': return '[WARN]'
    case 'bad': return '[FAIL]'
    case 'busy': return '[WORK]'
    case 'idle': return '[INFO]'
  }
}
