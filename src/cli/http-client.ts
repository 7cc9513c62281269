/**
 * A tiny JSON-over-HTTP client for the CLI, with the hub's error body in the
 * message. On node:http (src/net/http-request.ts): fetch refuses some ports.
 */
import { ERRORS, TrinityError, type ErrorCode } from '../errors.js'
import { httpRequestTo, type HttpResponse } from '../net/http-request.js'

/** An error answer from the hub, with the registry code its body carried (docs/errors.md). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly code: ErrorCode | undefined) {
    super(message)
    this.name = 'HttpError'
  }
}

const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && code in ERRORS

/** `token`: sent as `Authorization: Bearer …` (hub.auth.tokens). */
export async function request<T = unknown>(base: string, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T> {
  let response: HttpResponse
  const headers: Record<string, string> = {
    ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
  }
  try {
    response = await httpRequestTo(`${base}${path}`, {
      method, headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch (err) {
    throw new TrinityError('TRINITY_ERR_HUB_UNREACHABLE', `cannot reach the hub at ${base} (${(err as Error).message}); is it running? (trinity start)`)
  }
  const text = response.text()
  const parsed = text === '' ? undefined : (JSON.parse(text) as unknown)
  if (!response.ok) {
    const error = (parsed as { error?: { message?: string; code?: unknown } } | undefined)?.error
    throw new HttpError(response.status, `${method} ${path}: ${response.status} ${error?.message ?? text}`, isErrorCode(error?.code) ? error.code : undefined)
  }
  return parsed as T
}
