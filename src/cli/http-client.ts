/**
 * A tiny JSON-over-HTTP client for the CLI, with the hub's error body in the
 * message. On node:http (src/net/http-request.ts): fetch refuses some ports.
 */
import { httpRequestTo, type HttpResponse } from '../net/http-request.js'

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
    this.name = 'HttpError'
  }
}

export async function request<T = unknown>(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let response: HttpResponse
  try {
    response = await httpRequestTo(`${base}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })
  } catch (err) {
    throw new Error(`cannot reach the hub at ${base} (${(err as Error).message}); is it running? (trinity start)`)
  }
  const text = response.text()
  const parsed = text === '' ? undefined : (JSON.parse(text) as unknown)
  if (!response.ok) {
    const error = (parsed as { error?: { message?: string } } | undefined)?.error
    throw new HttpError(response.status, `${method} ${path}: ${response.status} ${error?.message ?? text}`)
  }
  return parsed as T
}
