/**
 * DOM helpers for the dashboard: element building (text only, never HTML, so
 * bus payloads cannot inject markup), writes that skip unchanged values, and
 * keyed list reconciliation so a re-render keeps rows (and the focus or the
 * button a user is about to click) instead of rebuilding them.
 */

type Child = Node | string
type Props = Record<string, string | undefined>

/** `el('button', { class: 'x', 'aria-label': 'Cancel t-1' }, 'Cancel')`. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(props)) if (value !== undefined) node.setAttribute(name, value)
  for (const child of children) node.append(child)
  return node
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`the page has no #${id}`)
  return node as T
}

export function setText(node: Element, value: string): void {
  if (node.textContent !== value) node.textContent = value
}

export function setAttr(node: Element, name: string, value: string): void {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value)
}

/** The i-th child element, which `create` made, so it exists. */
export function cell(row: Element, index: number): HTMLElement {
  return row.children[index] as HTMLElement
}

/**
 * Makes `parent`'s children the nodes for `items`, in order: a node is reused
 * when its `data-key` matches, created otherwise; nodes for vanished keys go.
 */
export function reconcile<T>(
  parent: Element,
  items: readonly T[],
  key: (item: T) => string,
  create: (item: T) => HTMLElement,
  update: (node: HTMLElement, item: T) => void,
): void {
  const existing = new Map<string, HTMLElement>()
  for (const child of Array.from(parent.children)) {
    const k = (child as HTMLElement).dataset['key']
    if (k !== undefined) existing.set(k, child as HTMLElement)
    else child.remove()
  }
  let cursor: Element | null = parent.firstElementChild
  for (const item of items) {
    const k = key(item)
    let node = existing.get(k)
    if (node === undefined) {
      node = create(item)
      node.dataset['key'] = k
    } else {
      existing.delete(k)
    }
    update(node, item)
    if (node === cursor) cursor = cursor.nextElementSibling
    else parent.insertBefore(node, cursor)
  }
  for (const stale of existing.values()) stale.remove()
}

// --- formatting ------------------------------------------------------------

export const DASH = '—'

export function orDash(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === '' ? DASH : String(value)
}

export function ms(value: number | null | undefined): string {
  return typeof value === 'number' && Number.isFinite(value) ? `${value < 10 ? value.toFixed(1) : Math.round(value)} ms` : DASH
}

export function clock(at: number | null | undefined): string {
  if (typeof at !== 'number' || !Number.isFinite(at)) return DASH
  return new Date(at).toLocaleTimeString([], { hour12: false })
}

/** "12s ago", "3m ago": coarse on purpose, so it rarely changes a cell. */
export function ago(at: number | null | undefined, now = Date.now()): string {
  if (typeof at !== 'number' || !Number.isFinite(at)) return DASH
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`
  return `${Math.floor(s / 86_400)}d ago`
}

export function short(value: unknown, max = 80): string {
  if (value === undefined) return DASH
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? typeof value
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
