/**
 * The approval queue, the same on both pages (each has an `#approvals` list):
 * every task the page knows in `needs_input`, with the question its leg
 * asked, a button per choice and a free-text answer box. Answering POSTs
 * /tasks/:id/respond (api.ts); the task then leaves the queue when its next
 * event (`running`) arrives over the bus, like every other change.
 */
import type { App } from './boot.js'
import { respondTask } from './api.js'
import { ago, byId, el, reconcile, setAttr, setText } from './dom.js'
import type { LegQuestion, TaskRow } from './tasks.js'

interface Waiting {
  task: TaskRow
  instance: string
  input: LegQuestion
}

/** One card per waiting leg, oldest question first (it has waited longest). */
function waitingLegs(app: App): Waiting[] {
  const out: Waiting[] = []
  for (const task of app.store.tasks.values()) {
    if (task.state !== 'needs_input') continue
    for (const leg of task.assignments) {
      if (leg.state === 'needs_input' && leg.input !== undefined) out.push({ task, instance: leg.instance ?? '?', input: leg.input })
    }
  }
  return out.sort((a, b) => a.input.askedAt - b.input.askedAt)
}

function answer(app: App, taskId: string, value: unknown, controls: HTMLFieldSetElement): void {
  controls.disabled = true
  void respondTask(taskId, value).then((result) => {
    app.notify(result.ok, result.text)
    // On success the card goes with the task's next event; a refusal leaves it to try again.
    if (!result.ok) controls.disabled = false
  })
}

function card(app: App, w: Waiting): HTMLElement {
  const { task, input } = w
  const choices = (input.choices ?? []).map((choice) => {
    const button = el('button', { type: 'button', class: 'choice', 'data-choice': choice, 'aria-label': `Answer task ${task.id}: ${choice}` }, choice)
    button.addEventListener('click', () => answer(app, task.id, choice, controls))
    return button
  })
  const text = el('input', { name: 'answer', class: 'answer-text', required: '', maxlength: '10000', autocomplete: 'off', 'aria-label': `Answer to task ${task.id}` })
  const controls = el('fieldset', { name: 'answer-fields' },
    ...(choices.length === 0 ? [] : [el('div', { class: 'choices' }, ...choices)]),
    el('label', { class: 'grow' }, 'Answer ', text),
    el('button', { type: 'submit' }, 'Send'))
  const form = el('form', { class: 'form answer' }, controls)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    answer(app, task.id, text.value, controls)
  })
  return el('article', { class: 'card approval', 'data-tone': 'warn', 'data-task': task.id },
    el('h3'), el('p', { class: 'question' }), el('p', { class: 'meta' }), form)
}

export function drawApprovals(app: App): void {
  const list = document.getElementById('approvals')
  if (list === null) return
  const waiting = waitingLegs(app)
  byId('approvals-empty').hidden = waiting.length > 0
  // Keyed on the question's time too: a new attempt that asks again gets a fresh card (and an empty box).
  reconcile(list, waiting, (w) => `${w.task.id}@${w.input.askedAt}`, (w) => card(app, w), (node, w) => {
    const [title, question, meta] = Array.from(node.children) as HTMLElement[]
    if (title !== undefined) setText(title, `${w.task.type} · ${w.task.id}`)
    if (question !== undefined) setText(question, w.input.question)
    if (meta !== undefined) setText(meta, `asked by ${w.instance} ${ago(w.input.askedAt)} · priority ${w.task.priority}`)
    setAttr(node, 'data-instance', w.instance)
  })
}
