/**
 * The error registry: every failure Trinity reports has a stable code, a
 * message template and, where it reaches HTTP, a status. docs/errors.md lists
 * them all; test/errors.test.ts checks that each code is documented.
 */

export const ERRORS = {
  TRINITY_ERR_CONFIG_INVALID: { status: 500, message: 'invalid configuration' },
  TRINITY_ERR_CONFIG_NOT_FOUND: { status: 500, message: 'configuration file not found' },
  TRINITY_ERR_EXEC_COMMAND_NOT_FOUND: { status: 500, message: 'exec command not found' },
  TRINITY_ERR_BAD_REQUEST: { status: 400, message: 'bad request' },
  TRINITY_ERR_BAD_PAYLOAD: { status: 400, message: 'malformed bus payload' },
  TRINITY_ERR_PAYLOAD_TOO_LARGE: { status: 413, message: 'payload too large' },
  TRINITY_ERR_PAYLOAD_TOO_DEEP: { status: 400, message: 'payload nests too deep' },
  TRINITY_ERR_SLOW_CONSUMER: { status: 503, message: 'slow consumer disconnected' },
  TRINITY_ERR_PACKET_TOO_LARGE: { status: 413, message: 'MQTT packet too large' },
  TRINITY_ERR_BAD_TOPIC: { status: 400, message: 'malformed topic' },
  TRINITY_ERR_ID_UNSUPPORTED: { status: 400, message: 'id the external broker cannot carry in a topic' },
  TRINITY_ERR_REGISTRY_FULL: { status: 429, message: 'too many joined instances' },
  TRINITY_ERR_SESSION_UNKNOWN: { status: 409, message: 'status for a session the hub has not seen born' },
  TRINITY_ERR_TASK_NOT_FOUND: { status: 404, message: 'task not found' },
  TRINITY_ERR_TASK_TYPE_UNKNOWN: { status: 422, message: 'no route for task type' },
  TRINITY_ERR_TASK_CONFLICT: { status: 409, message: 'task is not in a state that allows this' },
  TRINITY_ERR_ID_CONFLICT: { status: 409, message: 'id already used by a different task' },
  TRINITY_ERR_LEASE_STALE: { status: 409, message: 'lease no longer current' },
  TRINITY_ERR_NOT_FOUND: { status: 404, message: 'not found' },
  TRINITY_ERR_INSTANCE_NOT_FOUND: { status: 404, message: 'no such instance' },
  TRINITY_ERR_NOT_SUPERVISED: { status: 409, message: 'not run by a supervisor' },
  TRINITY_ERR_INSTANCE_CONFIGURED: { status: 409, message: 'instance is listed in the config' },
  TRINITY_ERR_INSTANCE_BUSY: { status: 409, message: 'instance holds tasks' },
  TRINITY_ERR_RECIPIENT_UNKNOWN: { status: 404, message: 'no such recipient' },
  TRINITY_ERR_UNAUTHORIZED: { status: 401, message: 'a valid bearer token is required' },
  TRINITY_ERR_FORBIDDEN: { status: 403, message: 'the token does not allow this' },
  TRINITY_ERR_ORIGIN_REFUSED: { status: 403, message: 'cross-origin request refused' },
  TRINITY_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'unsupported media type' },
  TRINITY_ERR_BUS_UNAVAILABLE: { status: 503, message: 'message bus unavailable' },
  TRINITY_ERR_BUS_LOGIN_REFUSED: { status: 401, message: 'the broker refused the login' },
  TRINITY_ERR_BUS_SUBSCRIBE_REFUSED: { status: 403, message: 'the broker refused the subscription' },
  TRINITY_ERR_HUB_UNREACHABLE: { status: 503, message: 'hub unreachable' },
  TRINITY_ERR_WORKDIR_LOCKED: { status: 409, message: 'bridge workdir locked' },
  TRINITY_ERR_STATE_LOCKED: { status: 409, message: 'state directory in use' },
  TRINITY_ERR_PUSH_FAILED: { status: 502, message: 'push failed' },
  TRINITY_ERR_RESTART_FAILED: { status: 500, message: 'restart failed' },
  TRINITY_ERR_PORT_IN_USE: { status: 500, message: 'port already in use' },
  TRINITY_ERR_SYNC_DISABLED: { status: 409, message: 'sync between computers is disabled' },
  TRINITY_ERR_STORE_CORRUPT: { status: 500, message: 'the task store cannot be opened' },
  // 507 Insufficient Storage (RFC 4918 §11.5): the server cannot store what it needs to complete the request.
  TRINITY_ERR_STORE_FULL: { status: 507, message: 'the task store is full' },
  TRINITY_ERR_NOT_LEADER: { status: 503, message: 'this hub is a standby' },
  // 503: this hub may not write the store; another hub (the leader) may.
  TRINITY_ERR_STORE_FENCED: { status: 503, message: 'this hub may no longer write the task store' },
  TRINITY_ERR_STORE_UNAVAILABLE: { status: 503, message: 'the task store cannot confirm its writes' },
  TRINITY_ERR_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof ERRORS

export class TrinityError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  /** The offending field, as a dotted path, when one input field is to blame. */
  readonly field: string | undefined

  constructor(code: ErrorCode, detail?: string, options?: { field?: string; cause?: unknown }) {
    super(detail === undefined ? ERRORS[code].message : `${ERRORS[code].message}: ${detail}`, { cause: options?.cause })
    this.name = 'TrinityError'
    this.code = code
    this.statusCode = ERRORS[code].status
    this.field = options?.field
  }

  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field }
  }
}

export function isTrinityError(err: unknown, code?: ErrorCode): err is TrinityError {
  return err instanceof TrinityError && (code === undefined || err.code === code)
}
