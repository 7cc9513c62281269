/**
 * The HTTP side of a standby hub (store.backend nats-kv, issue #13): until
 * it holds the leader lease, a hub answers on its port so that clients and
 * load balancers find out where to go:
 * - `GET /health`: 200 `{"status":"ok","role":"standby","leader":URL|null,…}`;
 * - every other request: 307 to the same path on the leader (a 307 keeps the
 *   method and body, so a POST /task is sent again there), or 503
 *   TRINITY_ERR_NOT_LEADER while no hub holds the lease (a takeover under way).
 *
 * It is plain node:http on purpose: a standby runs no coordinator, and a
 * takeover closes this server and starts the whole hub on the same port.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { HubHealth } from './contract/http.js'
import { TrinityError } from './errors.js'

export interface StandbyHttpOptions {
  readonly host: string
  readonly port: number
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | null
  /** The leader's HTTP URL as its lease says, or undefined while no hub holds it. */
  readonly leader: () => string | undefined
}

export interface StandbyHttp {
  readonly server: Server
  readonly port: number
  close(): Promise<void>
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), ...headers })
  res.end(json)
}

function answer(req: IncomingMessage, res: ServerResponse, leader: string | undefined): void {
  const path = req.url ?? '/'
  if (req.method === 'GET' && (path === '/health' || path.startsWith('/health?'))) {
    const health: HubHealth = { status: 'ok', bus: 'disconnected', store: 'ok', role: 'standby', leader: leader ?? null }
    return send(res, 200, health)
  }
  // The body is not read: the client sends it again to the leader.
  req.resume()
  if (leader === undefined) {
    const error = new TrinityError('TRINITY_ERR_NOT_LEADER', 'this hub is a standby and no hub holds the leader lease now (a takeover is under way): try again in a few seconds')
    return send(res, error.statusCode, { error: error.toJSON() }, { 'retry-after': '1' })
  }
  const location = `${leader.replace(/\/+$/, '')}${path}`
  send(res, 307, { error: new TrinityError('TRINITY_ERR_NOT_LEADER', `this hub is a standby: the leader is ${leader}`).toJSON() }, { location })
}

export async function startStandbyHttp(options: StandbyHttpOptions): Promise<StandbyHttp> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => answer(req, res, options.leader())
  const server: Server = options.tls === null ? createHttpServer(handler) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new TrinityError('TRINITY_ERR_PORT_IN_USE', `${options.host}:${options.port} (hub.port)`, { cause: err }) : err)
    })
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
