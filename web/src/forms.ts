/**
 * The action forms both pages can carry (each only if the page has it):
 * submit a task, contact an instance, sync now (only where sync is on). Each goes through the HTTP
 * API (api.ts) and reports in the notice line; what then happens arrives
 * over the bus like everything else.
 */
import type { App } from './boot.js'
import { contact, submitTask, syncNow } from './api.js'
import { el, reconcile, setText, short } from './dom.js'
import { buildTaskForm } from './task-form.js'
import { labelOf } from './tone.js'

function field<T extends HTMLElement>(form: HTMLFormElement, name: string): T {
  const node = form.elements.namedItem(name)
  if (node === null) throw new Error(`form #${form.id} has no ${name}`)
  return node as T
}

/** Disables a form while its request runs, so one click is one request. */
async function busy(button: HTMLButtonElement | HTMLFieldSetElement, run: () => Promise<void>): Promise<void> {
  button.disabled = true
  try {
    await run()
  } finally {
    button.disabled = false
  }
}

export function bindForms(app: App): void {
  buildTaskForm()
  const taskForm = document.getElementById('task-form') as HTMLFormElement | null
  if (taskForm !== null) {
    const fields = field<HTMLFieldSetElement>(taskForm, 'task-fields')
    taskForm.addEventListener('submit', (event) => {
      event.preventDefault()
      const type = field<HTMLInputElement>(taskForm, 'type').value.trim()
      const content = field<HTMLTextAreaElement>(taskForm, 'content').value
      const priority = field<HTMLSelectElement>(taskForm, 'priority').value
      void busy(fields, async () => {
        const result = await submitTask(type, content, priority)
        if (result.id !== null) app.store.submitted = result.id
        app.notify(result.ok, result.text)
        app.store.mark('tasks')
      })
    })
  }

  const contactForm = document.getElementById('contact-form') as HTMLFormElement | null
  if (contactForm !== null) {
    const fields = field<HTMLFieldSetElement>(contactForm, 'contact-fields')
    contactForm.addEventListener('submit', (event) => {
      event.preventDefault()
      const to = field<HTMLSelectElement>(contactForm, 'to').value
      const input = field<HTMLInputElement>(contactForm, 'message')
      void busy(fields, async () => {
        const result = await contact(to, input.value)
        app.notify(result.ok, result.text)
        if (result.ok) input.value = ''
      })
    })
  }

  const sync = document.getElementById('sync-now') as HTMLButtonElement | null
  // POST /sync answers 409 while sync is off: say so instead of offering the button.
  if (sync !== null) sync.hidden = !app.syncEnabled
  const syncOff = document.getElementById('sync-off')
  if (syncOff !== null) syncOff.hidden = app.syncEnabled
  sync?.addEventListener('click', () => {
    void busy(sync, async () => {
      const result = await syncNow()
      app.notify(result.ok, result.text)
    })
  })
}

/** Points the contact form at an instance and puts the cursor in the message box. */
export function contactInstance(id: string): void {
  const form = document.getElementById('contact-form') as HTMLFormElement | null
  if (form === null) return
  field<HTMLSelectElement>(form, 'to').value = id
  const input = field<HTMLInputElement>(form, 'message')
  input.focus()
  form.scrollIntoView({ block: 'nearest' })
}

/** Keeps the forms' choices (task types, recipients) and the submitted task's outcome current. */
export function drawForms(app: App): void {
  const { store } = app
  const types = document.getElementById('task-types')
  if (types !== null) {
    reconcile(types, [...store.taskTypes].sort(), (t) => t, (t) => el('option', { value: t }), () => undefined)
  }
  const to = document.getElementById('contact-to')
  if (to !== null) {
    const ids = [...store.instances.keys(), 'all']
    reconcile(to, ids, (id) => id, (id) => el('option', { value: id }, id === 'all' ? 'all (broadcast)' : id), () => undefined)
  }
  const outcome = document.getElementById('task-outcome')
  if (outcome !== null && store.submitted !== null) {
    const task = store.tasks.get(store.submitted)
    const result = task === undefined ? 'waiting for its first event'
      : task.state === 'completed' ? `result: ${task.resultPreview ?? '—'}`
      : task.error !== undefined ? `error: ${short(task.error, 200)}` : ''
    setText(outcome, `task ${store.submitted}: ${labelOf(task?.state ?? 'queued')}${result === '' ? '' : ` — ${result}`}`)
    outcome.dataset['state'] = task?.state ?? 'pending'
  }
}
