/**
 * Who may call the HTTP API (issue #14, finding 6; README, Security), as one
 * `onRequest` hook that runs before every route, the dashboards' and the
 * MQTT-over-WebSocket upgrade included:
 *
 * 1. Origin: a state-changing request (anything but GET/HEAD) and every
 *    WebSocket upgrade from a browser must come from the hub's own origin or
 *    one of `hub.allowedOrigins`. Browsers send `Origin` with every POST and
 *    every WebSocket handshake, cross-site or not (Fetch standard, "append a
 *    request Origin header"), and a page cannot forge or remove it; so this
 *    also covers body-less POSTs (cancel, retry, restart) and HTML forms,
 *    which no content-type rule would. No Origin and no `Sec-Fetch-Site`:
 *    not a browser (curl, the CLI, the SDK), which the token rule governs.
 * 2. Tokens: with `hub.auth.tokens` set, every route but the public ones in
 *    route-scopes.ts needs `Authorization: Bearer <token>` (401 without or with
 *    a wrong one) of a scope at least the route's (403 naming it). The
 *    presented token is hashed and compared with every configured digest in
 *    constant time, so timing reveals neither which token nor how much of it
 *    matched.
 *
 * GET /auth/bus (scope read) tells a page who its token is and hands it the
 * read-only bus login for MQTT over WebSocket.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { SCOPE_RANK, type Scope } from '../contract/constants.js'
import { AuthSession, ERROR_RESPONSES } from '../contract/http.js'
import type { HttpTokenConfig } from '../config/schema.js'
import { TrinityError } from '../errors.js'
import { accessFor } from './route-scopes.js'

export interface Principal {
  readonly name: string
  readonly scope: Scope
}

export interface HttpAuthOptions {
  readonly tokens: readonly HttpTokenConfig[]
  readonly allowedOrigins: readonly string[]
  /** The bus login GET /auth/bus hands a page; null when the broker needs none (or is external). */
  readonly busLogin: { readonly username: string; readonly password: string } | null
}

const principals = new WeakMap<FastifyRequest, Principal>()

/** The token's owner for this request; undefined when the hub has no tokens (its API is open). */
export function principalOf(request: FastifyRequest): Principal | undefined {
  return principals.get(request)
}

/** Browsers say so when a request is same-origin, or typed by the user (`none`). */
const SAME_SITE_FETCH: ReadonlySet<string> = new Set(['same-origin', 'none'])

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** Why a browser request from another origin is refused, or null when it may go on. */
function originRefusal(request: FastifyRequest, allowed: ReadonlySet<string>): string | null {
  const origin = header(request, 'origin')
  if (origin !== undefined) {
    const normalised = origin.toLowerCase()
    if (allowed.has(normalised)) return null
    const own = `${request.protocol}://${(header(request, 'host') ?? '').toLowerCase()}`
    if (normalised !== own) return `Origin ${origin} is neither this hub (${own}) nor in hub.allowedOrigins`
  }
  const site = header(request, 'sec-fetch-site')
  if (site !== undefined && !SAME_SITE_FETCH.has(site)) return `Sec-Fetch-Site: ${site} without an allowed Origin`
  return null
}

function isUpgrade(request: FastifyRequest): boolean {
  return header(request, 'upgrade')?.toLowerCase() === 'websocket'
}

function changesState(request: FastifyRequest): boolean {
  return !(request.method === 'GET' || request.method === 'HEAD') || isUpgrade(request)
}

/**
 * A refused WebSocket handshake: the answer written on the socket, which is
 * then closed. Through Fastify's reply, the upgrade socket (half-open, as
 * the HTTP server's are) outlived the answer and held the hub's close.
 */
function refuseUpgrade(request: FastifyRequest, error: TrinityError): void {
  const body = JSON.stringify({ error: error.toJSON() })
  const socket = request.raw.socket
  socket.end(`HTTP/1.1 ${error.statusCode} Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  socket.once('finish', () => socket.destroy())
}

/** The hook; before every route. */
export function registerHttpAuth(app: FastifyInstance, options: Omit<HttpAuthOptions, 'busLogin'>): void {
  const tokens = options.tokens.map((t) => ({ name: t.name, scope: t.scope, digest: Buffer.from(t.sha256, 'hex') }))
  const allowed = new Set(options.allowedOrigins.map((o) => o.toLowerCase()))

  const identify = (authorization: string | undefined): Principal | undefined => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')
    const presented = createHash('sha256').update(match?.[1] ?? '').digest()
    let found: Principal | undefined
    // Every digest is compared, found or not: the time taken says nothing about which matched.
    for (const token of tokens) {
      if (timingSafeEqual(presented, token.digest) && match !== null) found = { name: token.name, scope: token.scope }
    }
    return found
  }

  app.addHook('onRequest', async (request, reply) => {
    const refusal = changesState(request) ? originRefusal(request, allowed) : null
    if (refusal !== null) {
      const error = new TrinityError('TRINITY_ERR_ORIGIN_REFUSED', refusal, { field: 'origin' })
      if (!isUpgrade(request)) throw error
      refuseUpgrade(request, error)
      return reply.hijack()
    }
    if (tokens.length === 0) return
    const route = request.routeOptions.url
    const access = accessFor(request.method, route)
    if (access === 'public') return
    const principal = identify(header(request, 'authorization'))
    if (principal === undefined) {
      void reply.header('www-authenticate', 'Bearer realm="trinity"')
      const why = header(request, 'authorization') === undefined ? 'send Authorization: Bearer <token>' : 'the token matches none in hub.auth.tokens'
      throw new TrinityError('TRINITY_ERR_UNAUTHORIZED', why, { field: 'authorization' })
    }
    principals.set(request, principal)
    if (SCOPE_RANK[principal.scope] < SCOPE_RANK[access]) {
      throw new TrinityError('TRINITY_ERR_FORBIDDEN', `${request.method} ${route ?? request.url} needs scope ${access}, token ${principal.name} has ${principal.scope}`, { field: 'authorization' })
    }
  })
}

/** GET /auth/bus; after registerRoutes, whose error handler its refusals need. */
export function registerAuthRoutes(app: FastifyInstance, options: Pick<HttpAuthOptions, 'busLogin'>): void {
  app.get('/auth/bus', { schema: { response: { 200: AuthSession, ...ERROR_RESPONSES } } }, async (request): Promise<AuthSession> => {
    const principal = principalOf(request)
    return { name: principal?.name ?? null, scope: principal?.scope ?? 'admin', bus: options.busLogin === null ? null : { ...options.busLogin } }
  })
}
