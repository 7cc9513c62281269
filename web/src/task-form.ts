/**
 * The task form, written once for both pages: each page has an empty
 * `#task-form-slot` where it goes. The priorities and the type pattern come
 * from the contract's constants (src/contract/constants.ts), so the page
 * offers exactly what POST /task accepts.
 */
import { DEFAULT_PRIORITY, PRIORITIES, TASK_STATES, TASK_TYPE_PATTERN } from '../../src/contract/constants.js'
import { el } from './dom.js'

/** The HTML pattern attribute is anchored by the browser: the contract's ^…$ go. */
const TYPE_PATTERN = TASK_TYPE_PATTERN.replace(/^\^/, '').replace(/\$$/, '')

/** Puts the task form and its outcome line where the page has `#task-form-slot`; nothing on a page without one. */
export function buildTaskForm(): void {
  const slot = document.getElementById('task-form-slot')
  if (slot === null) return
  const priorities = PRIORITIES.map((p) => el('option', { value: p, ...(p === DEFAULT_PRIORITY ? { selected: '' } : {}) }, p))
  const form = el('form', { id: 'task-form', class: 'form' },
    el('fieldset', { name: 'task-fields' },
      el('legend', {}, 'Submit a task'),
      el('label', {}, 'Type ', el('input', { name: 'type', id: 'task-type', list: 'task-types', required: '', pattern: TYPE_PATTERN, autocomplete: 'off' })),
      el('datalist', { id: 'task-types' }),
      el('label', {}, 'Priority ', el('select', { name: 'priority', id: 'task-priority' }, ...priorities)),
      el('label', { class: 'grow' }, 'Content ', el('textarea', { name: 'content', id: 'task-content', rows: '1' })),
      el('button', { type: 'submit' }, 'Submit')))
  const outcome = el('p', { id: 'task-outcome', class: 'muted', role: 'status', 'aria-live': 'polite' })
  slot.replaceWith(form, outcome)
}

/** Adds one option per task state to a filter select that holds its fixed choices (all, active). */
export function addTaskStateOptions(select: HTMLSelectElement): void {
  for (const state of TASK_STATES) select.append(el('option', { value: state }, state))
}
