/**
 * The one table of what each HTTP route needs (README, Security): a token
 * scope, or `public`. A route not named here needs `read` for GET and `admin`
 * for anything else, so a new state-changing route is closed until it is
 * given a smaller scope here: one line. Keys are `METHOD url` with the
 * route's URL as registered (`:id` parameters, `*` wildcards).
 */
import type { Scope } from '../contract/constants.js'

export type RouteAccess = Scope | 'public'

const ROUTE_SCOPES: Readonly<Record<string, RouteAccess>> = {
  // Liveness for the supervisor and probes: says nothing but ok / degraded.
  'GET /health': 'public',
  // MQTT over WebSocket: the broker's own login decides (broker.auth; a page gets one from GET /auth/bus).
  'GET /mqtt': 'public',
  // The dashboards' HTML: the page asks for a token before it calls anything.
  'GET /command': 'public',
  'GET /dashboard': 'public',
  'POST /task': 'submit',
  'POST /send': 'submit',
  'POST /tasks/:id/respond': 'submit',
}

/** The dashboards' CSS, scripts and vendored modules: static files, no data. */
const PUBLIC_PREFIXES: readonly string[] = ['/dashboard-assets/']

/** `url`: the matched route's URL, or undefined when no route matched (a 404). */
export function accessFor(method: string, url: string | undefined): RouteAccess {
  const read = method === 'GET' || method === 'HEAD'
  if (url !== undefined) {
    const named = ROUTE_SCOPES[`${read ? 'GET' : method} ${url}`]
    if (named !== undefined) return named
    if (read && PUBLIC_PREFIXES.some((prefix) => url.startsWith(prefix))) return 'public'
  }
  return read ? 'read' : 'admin'
}
