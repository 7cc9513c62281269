/**
 * The detail view (`/dashboard`): the instance table with response times, the
 * health-check timeline, the task queue (what each task is, shortened) with
 * cancel and retry, dead letters, and the message history with filters.
 * Tables show at most MAX_ROWS rows.
 */
import type { Message } from '../../src/contract/payloads/message.js'
import { ACTIVE_TASK_STATES } from '../../src/contract/constants.js'
import { taskAction } from './api.js'
import { drawApprovals } from './approvals.js'
import { boot, type App } from './boot.js'
import { ago, byId, cell, clock, el, ms, orDash, reconcile, setAttr, setText, short } from './dom.js'
import { bindForms, drawForms } from './forms.js'
import { addTaskStateOptions } from './task-form.js'
import { MAX_ROWS, type InstanceRow, type Section } from './store.js'
import type { TaskRow } from './tasks.js'
import { labelOf, symbolOf, toneOf } from './tone.js'

function row(cells: number): HTMLTableRowElement {
  return el('tr', {}, ...Array.from({ length: cells }, () => el('td')))
}

function drawInstances(app: App): void {
  const inFlight = app.store.inFlight()
  const restarts = app.store.restarts()
  const rows = [...app.store.instances.values()]
  reconcile(byId('instance-rows'), rows, (r) => r.id, () => row(9), (node, r: InstanceRow) => {
    const { state } = r
    // The id alone keeps the state column on a phone's screen; the name is the cell's tooltip.
    setText(cell(node, 0), r.id)
    setAttr(cell(node, 0), 'title', r.name ?? r.id)
    setText(cell(node, 1), labelOf(state))
    setText(cell(node, 2), ms(r.responseMs))
    setText(cell(node, 3), ms(r.avgMs))
    setText(cell(node, 4), ms(r.p95Ms))
    setText(cell(node, 5), String(inFlight.get(r.id) ?? 0))
    setText(cell(node, 6), r.lastCheckAt === null ? '—' : `${clock(r.lastCheckAt)} (${ago(r.lastCheckAt)})`)
    setText(cell(node, 7), orDash(restarts.get(r.id)))
    setText(cell(node, 8), orDash(r.shownReason))
    setAttr(node, 'data-instance', r.id)
    setAttr(node, 'data-state', state)
    setAttr(cell(node, 1), 'data-tone', toneOf(state))
  })
  reconcile(byId('timeline'), rows, (r) => r.id,
    (r) => el('li', { 'data-instance': r.id }, el('span', { class: 'label' }, r.id), el('span', { class: 'cells', role: 'img' })),
    (node, r: InstanceRow) => {
      const cells = cell(node, 1)
      setAttr(cells, 'aria-label', `${r.id}: last ${r.timeline.length} checks, newest last: ${r.timeline.map((p) => p.state).join(', ') || 'none yet'}`)
      reconcile(cells, r.timeline, (p) => String(p.at),
        (p) => el('span', { class: 'tick', 'data-tone': toneOf(p.state), 'data-at': String(p.at), title: `${clock(p.at)} ${p.state} ${ms(p.ms)}` }, symbolOf(toneOf(p.state))),
        () => undefined)
    })
}

function taskOwner(task: TaskRow): string {
  const owners = task.assignments.map((a) => a.instance ?? `(${a.targets.join('|')})`)
  return owners.length === 0 ? '—' : owners.join(', ')
}

function attempts(task: TaskRow): string {
  return `${task.assignments.reduce((n, a) => Math.max(n, a.attempts), 0)}/${task.maxAttempts}`
}

function outcome(task: TaskRow): string {
  if (task.error !== undefined) return task.error
  if (task.state === 'completed') return task.resultPreview ?? '—'
  return '—'
}

function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

const TASK_CELLS = 10

function taskRow(app: App, task: TaskRow): HTMLTableRowElement {
  const node = row(TASK_CELLS)
  const act = (action: 'cancel' | 'retry'): HTMLButtonElement => {
    const button = el('button', { type: 'button', class: action, 'aria-label': `${action === 'cancel' ? 'Cancel' : 'Retry'} task ${task.id}` }, action === 'cancel' ? 'Cancel' : 'Retry')
    button.addEventListener('click', () => {
      button.disabled = true
      void taskAction(task.id, action).then((r) => app.notify(r.ok, r.text)).finally(() => { button.disabled = false })
    })
    return button
  }
  cell(node, 9).append(act('cancel'), act('retry'))
  return node
}

/** Text that may not fit its column: cut by CSS with an ellipsis, whole in the tooltip. */
function setLong(node: HTMLElement, text: string, title = text): void {
  setText(node, text)
  setAttr(node, 'title', title)
}

function updateTaskRow(node: HTMLElement, task: TaskRow): void {
  setLong(cell(node, 0), task.id)
  setText(cell(node, 1), task.type)
  setText(cell(node, 2), labelOf(task.state))
  setText(cell(node, 3), task.priority)
  setText(cell(node, 4), attempts(task))
  setLong(cell(node, 5), taskOwner(task))
  setText(cell(node, 6), clock(task.updatedAt))
  const cut = task.contentBytes !== null && task.contentBytes > task.contentPreview.length
  setLong(cell(node, 7), orDash(task.contentPreview), cut && task.contentBytes !== null ? `${task.contentPreview} (${size(task.contentBytes)} in all)` : task.contentPreview)
  setLong(cell(node, 8), outcome(task))
  setAttr(node, 'data-task', task.id)
  setAttr(node, 'data-state', task.state)
  setAttr(cell(node, 2), 'data-tone', toneOf(task.state))
  const [cancel, retry] = Array.from(cell(node, 9).children) as HTMLButtonElement[]
  if (cancel !== undefined) cancel.hidden = !ACTIVE_TASK_STATES.has(task.state)
  if (retry !== undefined) retry.hidden = !(task.state === 'failed' || task.state === 'dead' || task.state === 'cancelled')
}

function drawTasks(app: App): void {
  const filter = (byId<HTMLSelectElement>('task-filter')).value
  const tasks = app.store.sortedTasks((t) => filter === 'all' || (filter === 'active' ? ACTIVE_TASK_STATES.has(t.state) : t.state === filter)).slice(0, MAX_ROWS)
  reconcile(byId('task-rows'), tasks, (t) => t.id, (t) => taskRow(app, t), updateTaskRow)
  setText(byId('task-count'), `${tasks.length} shown of ${app.store.tasks.size} known`)
  const dead = app.store.sortedTasks((t) => t.state === 'dead').slice(0, MAX_ROWS)
  reconcile(byId('dead-rows'), dead, (t) => t.id, (t) => taskRow(app, t), updateTaskRow)
  byId('dead-empty').hidden = dead.length > 0
  drawApprovals(app)
  drawForms(app)
}

function drawMessages(app: App): void {
  const from = byId<HTMLInputElement>('msg-from').value.trim()
  const to = byId<HTMLInputElement>('msg-to').value.trim()
  const text = byId<HTMLInputElement>('msg-text').value.trim().toLowerCase()
  const shown = app.store.messages.filter((m) => (from === '' || m.from === from) && (to === '' || m.to === to) && (text === '' || m.message.toLowerCase().includes(text)))
  reconcile(byId('message-rows'), shown, (m) => m.id, () => row(4), (node, m: Message) => {
    setText(cell(node, 0), clock(m.ts))
    setText(cell(node, 1), m.from)
    setText(cell(node, 2), m.to)
    setText(cell(node, 3), short(m.message, 300))
  })
  setText(byId('message-count'), `${shown.length} shown of ${app.store.messages.length} kept`)
}

const draws: Partial<Record<Section, (app: App) => void>> = {
  instances: drawInstances,
  platform: drawInstances,
  tasks: drawTasks,
  messages: drawMessages,
}

const app = boot((dirty, app) => {
  for (const section of dirty) draws[section]?.(app)
})
bindForms(app)
addTaskStateOptions(byId<HTMLSelectElement>('task-filter'))
byId('task-filter').addEventListener('change', () => app.store.mark('tasks'))
for (const id of ['msg-from', 'msg-to', 'msg-text']) byId(id).addEventListener('input', () => app.store.mark('messages'))
