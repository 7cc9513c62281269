/**
 * Signing the page in to a hub with tokens (hub.auth.tokens; README, Security).
 * The page asks GET /auth/bus first: an open hub, or the token this tab
 * already holds, answers at once with the bus login for MQTT over WebSocket;
 * a 401 shows the sign-in form instead of the page until a token is
 * accepted. The token lives in sessionStorage: this tab only, gone when it
 * closes, never readable by another origin's page.
 */
import { AuthSession } from '../../src/contract/http.js'
import { validate } from '../../src/contract/payloads/validate.js'
import { call, setSender, TOKEN_KEY, whenUnauthorized } from './api.js'
import { byId, el, setText } from './dom.js'

/** A hub that does not answer yet (starting, restarting) is asked again after this long, without a form. */
const RETRY_MS = 1000

/** Resolves once the hub accepts the page, with who it is and its bus login. */
export async function signIn(): Promise<AuthSession> {
  let error: string | null = null
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY)
    const r = await call('GET', '/auth/bus', undefined, token)
    if (r.ok) {
      const session = validate(AuthSession, r.body)
      if (session.ok) return accepted(session.value)
      error = `GET /auth/bus: answer dropped: ${session.reason}`
    } else if (r.status === 401) {
      if (token !== null) error = `token refused: ${r.message}`
      sessionStorage.removeItem(TOKEN_KEY)
    } else if (r.status === 0 || r.status >= 500) {
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
      continue
    } else {
      error = r.message
    }
    sessionStorage.setItem(TOKEN_KEY, await askForToken(error))
  }
}

function accepted(session: AuthSession): AuthSession {
  delete document.body.dataset['login']
  document.getElementById('login')?.remove()
  setSender(session.name)
  // Later, a 401 means the token no longer works (the hub's tokens changed): sign in again.
  whenUnauthorized(() => {
    sessionStorage.removeItem(TOKEN_KEY)
    location.reload()
  })
  return session
}

/** Shows the form (the rest of the page hidden by style.css) and resolves with what the user enters. */
function askForToken(error: string | null): Promise<string> {
  let form = document.getElementById('login') as HTMLFormElement | null
  if (form === null) {
    form = el('form', { id: 'login', class: 'login', 'aria-label': 'Sign in' },
      el('h2', {}, 'Sign in to this hub'),
      el('p', {}, 'This hub asks for a token (hub.auth.tokens). It is kept in this tab only.'),
      el('label', { for: 'login-token' }, 'Token '),
      el('input', { id: 'login-token', name: 'token', type: 'password', autocomplete: 'current-password', required: '' }),
      ' ', el('button', { type: 'submit' }, 'Sign in'),
      el('p', { id: 'login-error', class: 'notice', role: 'alert', 'data-tone': 'bad' }))
    document.body.prepend(form)
  }
  document.body.dataset['login'] = 'shown'
  setText(byId('login-error'), error ?? '')
  const input = byId<HTMLInputElement>('login-token')
  input.value = ''
  input.focus()
  const shown = form
  return new Promise((resolve) => {
    shown.onsubmit = (event) => {
      event.preventDefault()
      const token = input.value.trim()
      if (token !== '') resolve(token)
    }
  })
}
