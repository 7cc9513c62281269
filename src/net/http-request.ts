/**
 * One HTTP request on `node:http`, for every probe and client Trinity runs
 * (health checks, the HTTP adapter, the supervisor's readiness poll, the CLI).
 *
 * Why not `fetch`: Node's fetch (undici) follows the WHATWG Fetch standard's
 * "bad port" list and refuses, before connecting, ports such as 6000 (X11),
 * 6665-6669 (IRC), 5060 (SIP) or 10080 with a bare `fetch failed` whose
 * cause is `bad port`. Visitor Intelligence, the seed's instance on 6000,
 * was therefore always offline while `curl :6000/health` answered 200. A
 * browser's port list has no place between our own processes, and node:http
 * connects to any port.
 *
 * Errors are `HttpRequestError`s whose message is the real cause, ready for a
 * `reason` field: `connect ECONNREFUSED 127.0.0.1:6000`, `no answer within
 * 5000 ms`, `aborted`. One connection per request (no keep-alive agent), so a
 * probe measures what a new client meets and leaves no socket behind.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface HttpRequestOptions {
  readonly method?: string
  readonly headers?: Readonly<Record<string, string>>
  /** A string or bytes; sent with its content-length. */
  readonly body?: string | Buffer
  /** Gives up (`no answer within N ms`) when the whole answer has not arrived by then. */
  readonly timeoutMs?: number
  /** Gives up (`aborted`) when this signal aborts. */
  readonly signal?: AbortSignal
}

export interface HttpResponse {
  readonly status: number
  readonly ok: boolean
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  text(): string
}

export type HttpFailure = 'timeout' | 'aborted' | 'network' | 'invalid-url'

export class HttpRequestError extends Error {
  constructor(readonly kind: HttpFailure, message: string, readonly code?: string) {
    super(message)
    this.name = 'HttpRequestError'
  }
}

export function httpRequestTo(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  let target: URL
  try {
    target = new URL(url)
  } catch {
    return Promise.reject(new HttpRequestError('invalid-url', `invalid URL ${JSON.stringify(url)}`))
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return Promise.reject(new HttpRequestError('invalid-url', `unsupported protocol ${target.protocol} in ${url}`))
  }
  const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body)
  const headers: Record<string, string> = { ...options.headers }
  if (body !== undefined) headers['content-length'] = String(body.length)
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false
    const finish = (err: HttpRequestError | undefined, response?: HttpResponse): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) {
        req.destroy()
        reject(err)
      } else if (response !== undefined) {
        resolve(response)
      }
    }
    const onAbort = (): void => finish(new HttpRequestError('aborted', 'aborted'))
    // agent: false: a fresh connection, closed after the answer.
    const req = send(target, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', (err) => finish(networkError(err)))
      res.on('aborted', () => finish(new HttpRequestError('network', 'the connection closed before the answer was complete')))
      res.on('end', () => {
        const status = res.statusCode ?? 0
        const data = Buffer.concat(chunks)
        finish(undefined, { status, ok: status >= 200 && status < 300, headers: res.headers, body: data, text: () => data.toString('utf8') })
      })
    })
    req.on('error', (err) => finish(networkError(err)))
    const timer = options.timeoutMs === undefined ? undefined
      : setTimeout(() => finish(new HttpRequestError('timeout', `no answer within ${options.timeoutMs} ms`)), options.timeoutMs)
    if (options.signal?.aborted === true) return onAbort()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    req.end(body)
  })
}

/** Node's own message (`connect ECONNREFUSED 127.0.0.1:6000`) already names the cause and the address. */
function networkError(err: NodeJS.ErrnoException): HttpRequestError {
  return new HttpRequestError('network', err.message, err.code)
}
