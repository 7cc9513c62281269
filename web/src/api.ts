/**
 * The HTTP API calls behind the dashboard's buttons. Every call resolves to a
 * result with a sentence for the user; a refusal carries the API's own error
 * message (`{ error: { code, message } }`, the contract's ErrorBody). With the
 * hub's tokens on, every call carries the token the user signed in with
 * (login.ts keeps it in sessionStorage: this tab only, gone when it closes).
 */
import { ErrorBody, TaskAdmitted } from '../../src/contract/http.js'
import { validate } from '../../src/contract/payloads/validate.js'

export interface ApiResult {
  ok: boolean
  status: number
  /** The parsed JSON answer, unchecked: a reader decodes it with the route's schema (src/contract/http.ts). */
  body: unknown
  code: string | null
  message: string
}

/** Where the page keeps its token: sessionStorage, so it dies with the tab and no other site's page can read it. */
export const TOKEN_KEY = 'trinity-token'

/** Who signed in (the token's name): a message the page sends is from them; `dashboard` on an open hub. */
let sender = 'dashboard'
export function setSender(name: string | null): void {
  sender = name ?? 'dashboard'
}

/** A 401 means the token went stale (the hub's config changed): forget it and sign in again. */
let onUnauthorized: () => void = () => undefined
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler
}

export async function call(method: 'GET' | 'POST', path: string, body?: unknown, token: string | null = sessionStorage.getItem(TOKEN_KEY)): Promise<ApiResult> {
  let response: Response
  const headers: Record<string, string> = {
    ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(token === null ? {} : { authorization: `Bearer ${token}` }),
  }
  try {
    response = await fetch(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch (err) {
    return { ok: false, status: 0, body: undefined, code: null, message: `the hub did not answer (${(err as Error).message})` }
  }
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = text === '' ? undefined : JSON.parse(text)
  } catch {
    parsed = text
  }
  if (response.status === 401) onUnauthorized()
  const refusal = response.ok ? undefined : validate(ErrorBody, parsed)
  const error = refusal?.ok === true ? refusal.value.error : undefined
  return {
    ok: response.ok,
    status: response.status,
    body: parsed,
    code: error?.code ?? null,
    message: error?.message ?? `HTTP ${response.status}`,
  }
}

/** Asks the git bridge for a round now (POST /sync) and says what happened. */
export async function syncNow(): Promise<{ ok: boolean; text: string }> {
  const r = await call('POST', '/sync')
  if (r.ok) return { ok: true, text: 'sync round requested' }
  if (r.status === 409 || r.code === 'TRINITY_ERR_SYNC_DISABLED') return { ok: false, text: `sync is disabled: ${r.message}` }
  if (r.status === 404) return { ok: false, text: 'sync is not available on this hub (it has no POST /sync)' }
  return { ok: false, text: `sync failed: ${r.message}` }
}

export async function restartInstance(id: string): Promise<{ ok: boolean; text: string }> {
  const r = await call('POST', `/instances/${encodeURIComponent(id)}/restart`)
  if (r.ok) return { ok: true, text: `restart of ${id} requested` }
  if (r.status === 404 && r.code === 'TRINITY_ERR_NOT_FOUND') return { ok: false, text: `cannot restart ${id}: this hub has no supervisor endpoint (${r.message})` }
  return { ok: false, text: `cannot restart ${id}: ${r.message}` }
}

export async function contact(to: string, message: string): Promise<{ ok: boolean; text: string }> {
  const r = await call('POST', '/send', { from: sender, to, message })
  return r.ok ? { ok: true, text: `message sent to ${to}` } : { ok: false, text: `message to ${to} not sent: ${r.message}` }
}

export async function submitTask(type: string, content: string, priority: string): Promise<{ ok: boolean; text: string; id: string | null }> {
  const r = await call('POST', '/task', { type, content, priority })
  if (!r.ok) return { ok: false, text: `task not submitted: ${r.message}`, id: null }
  const admitted = validate(TaskAdmitted, r.body)
  const id = admitted.ok ? admitted.value.id : null
  return { ok: true, text: `task ${id ?? ''} submitted (${type}, ${priority})`, id }
}

export async function taskAction(id: string, action: 'cancel' | 'retry'): Promise<{ ok: boolean; text: string }> {
  const r = await call('POST', `/tasks/${encodeURIComponent(id)}/${action}`)
  return r.ok ? { ok: true, text: `task ${id}: ${action} accepted` } : { ok: false, text: `cannot ${action} task ${id}: ${r.message}` }
}

/** POST /tasks/:id/respond: the answer to a task waiting for input (needs_input). */
export async function respondTask(id: string, answer: unknown): Promise<{ ok: boolean; text: string }> {
  const r = await call('POST', `/tasks/${encodeURIComponent(id)}/respond`, { answer })
  return r.ok ? { ok: true, text: `task ${id}: answer sent` } : { ok: false, text: `answer to task ${id} not sent: ${r.message}` }
}
