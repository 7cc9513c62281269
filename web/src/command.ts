/**
 * Central Command (`/command`): computers, the instance grid, hub metrics,
 * platform modules and the activity log, with one-click sync, restart and
 * contact. The look is the seed's: green on black, a terminal.
 */
import { restartInstance } from './api.js'
import { drawApprovals } from './approvals.js'
import { boot, type App } from './boot.js'
import { ago, byId, cell, DASH, el, ms, orDash, reconcile, setAttr, setText } from './dom.js'
import { bindForms, contactInstance, drawForms } from './forms.js'
import type { ComputerView } from './platform.js'
import type { InstanceRow, Section } from './store.js'
import { labelOf, toneOf } from './tone.js'

function drawComputers(app: App): void {
  const computers = [...app.store.computers.values()].sort((a, b) => a.computer.localeCompare(b.computer, undefined, { numeric: true }))
  byId('computers-empty').hidden = computers.length > 0
  reconcile(byId('computers'), computers, (c) => c.computer,
    () => el('article', { class: 'card computer' }, el('h3'), el('p', { class: 'state' }), el('p', { class: 'meta' }), el('p', { class: 'meta' })),
    (node, c: ComputerView) => {
      const name = /^\d+$/.test(c.computer) ? `C${c.computer}` : c.computer
      setText(cell(node, 0), name)
      setText(cell(node, 1), labelOf(c.state))
      setText(cell(node, 2), `last sync ${orDash(c.lastSync)} · updated ${orDash(c.updated)}`)
      setText(cell(node, 3), `${c.instances.length} instances · queue ${orDash(c.queueDepth)}`)
      setAttr(node, 'data-tone', toneOf(c.state))
      setAttr(node, 'data-computer', c.computer)
    })
}

function drawInstances(app: App): void {
  const rows = [...app.store.instances.values()]
  const restarts = app.store.restarts()
  reconcile(byId('instances'), rows, (r) => r.id,
    (r) => {
      const restart = el('button', { type: 'button', class: 'restart', 'aria-label': `Start or restart ${r.id}` }, 'Restart')
      restart.addEventListener('click', () => {
        restart.disabled = true
        void restartInstance(r.id).then((result) => app.notify(result.ok, result.text)).finally(() => { restart.disabled = false })
      })
      const talk = el('button', { type: 'button', class: 'contact', 'aria-label': `Contact ${r.id}` }, 'Contact')
      talk.addEventListener('click', () => contactInstance(r.id))
      return el('article', { class: 'card instance', 'data-instance': r.id },
        el('h3', {}, el('span', { class: 'dot', 'aria-hidden': 'true' }), el('span', { class: 'name' })),
        el('p', { class: 'state' }), el('p', { class: 'meta' }), el('p', { class: 'meta' }),
        el('div', { class: 'actions' }, restart, talk, el('span', { class: 'unsupervised' }, 'not supervised: no restart')))
    },
    (node, r: InstanceRow) => {
      const { state, shownReason: reason } = r
      setText(node.querySelector('.name') ?? node, r.name === null || r.name === r.id ? r.id : `${r.name} (${r.id})`)
      setText(cell(node, 1), labelOf(state))
      setText(cell(node, 2), `response ${ms(r.responseMs)} · avg ${ms(r.avgMs)}`)
      setText(cell(node, 3), `checked ${ago(r.lastCheckAt)} · restarts ${orDash(restarts.get(r.id))}${reason === null ? '' : ` · ${reason}`}`)
      setAttr(node, 'data-state', state)
      setAttr(node, 'data-tone', toneOf(state))
      // POST /instances/:id/restart is refused (409) unless a running supervisor runs this instance.
      const supervised = app.store.supervisor?.state === 'running' && app.store.processOf(r.id) !== undefined
      const restart = node.querySelector<HTMLButtonElement>('button.restart')
      if (restart !== null) {
        restart.hidden = !supervised
        setText(restart, state === 'offline' || state === 'error' ? 'Start' : 'Restart')
      }
      const note = node.querySelector<HTMLElement>('.unsupervised')
      if (note !== null) note.hidden = supervised
    })
}

function drawStats(app: App): void {
  const stats = app.store.hubStats
  const rows = [...app.store.instances.values()]
  const online = rows.filter((r) => r.state === 'online').length
  setText(byId('metric-instances'), `${online}/${rows.length}`)
  setText(byId('metric-checks'), orDash(stats?.healthChecks))
  setText(byId('metric-messages'), orDash(stats?.messages))
  const tasks = stats?.tasks
  setText(byId('metric-tasks'), tasks === undefined ? DASH : String(Object.values(tasks).reduce((a, b) => a + (typeof b === 'number' ? b : 0), 0)))
  setText(byId('metric-tasks-detail'), tasks === undefined ? DASH
    : `${tasks.queued ?? 0} queued · ${(tasks.assigned ?? 0) + (tasks.running ?? 0)} running · ${tasks.needs_input ?? 0} need input · ${tasks.completed ?? 0} done · ${(tasks.failed ?? 0) + (tasks.dead ?? 0)} failed`)
}

function drawModules(app: App): void {
  const { store } = app
  const hubChild = store.supervisor?.children.find((c) => c.kind === 'hub')
  const bridgeChild = store.supervisor?.children.find((c) => c.kind === 'bridge')
  const modules: { id: string; state: string | null; kind: 'state' | 'process'; detail: string }[] = [
    { id: 'hub', state: hubChild?.state ?? (store.hubStats === null ? null : 'running'), kind: 'process', detail: store.hubStats === null ? 'no stats yet' : `stats ${ago(store.hubStats.at)}` },
    { id: 'broker', state: store.connected ? 'connected' : 'disconnected', kind: 'state', detail: `${store.events} events seen` },
    {
      id: 'bridge', state: store.bridge?.state ?? bridgeChild?.state ?? null, kind: store.bridge === null ? 'process' : 'state',
      detail: store.bridge === null ? 'not reporting' : `last round ${ago(store.bridge.lastRoundAt)} · queued ${orDash(store.bridge.queued)}${store.bridge.lastError === null ? '' : ` · ${store.bridge.lastError}`}`,
    },
    {
      id: 'supervisor', state: store.supervisor?.state ?? null, kind: 'process',
      detail: store.supervisor === null ? 'not reporting' : `${store.supervisor.children.length} processes · up since ${ago(store.supervisor.startedAt)}`,
    },
  ]
  for (const m of modules) {
    const node = byId(`module-${m.id}`)
    setText(cell(node, 1), labelOf(m.state, m.kind))
    setText(cell(node, 2), m.detail)
    setAttr(node, 'data-tone', toneOf(m.state, m.kind))
    setAttr(node, 'data-state', m.state ?? 'unknown')
  }
}

const draws: Partial<Record<Section, (app: App) => void>> = {
  computers: drawComputers,
  instances: (app) => { drawInstances(app); drawStats(app) },
  stats: drawStats,
  platform: drawModules,
  connection: drawModules,
  tasks: (app) => { drawForms(app); drawApprovals(app) },
}

const app = boot((dirty, app) => {
  for (const section of dirty) draws[section]?.(app)
  if (dirty.has('instances')) drawForms(app)
})
bindForms(app)
