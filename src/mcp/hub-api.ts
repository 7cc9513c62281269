/**
 * What `trinity mcp` asks the hub over HTTP (README "HTTP API"): the task
 * record (is this lease still current?), submissions, the status summary,
 * the message log. Through the CLI's client (src/cli/http-client.ts, on
 * node:http), so an unreachable hub is TRINITY_ERR_HUB_UNREACHABLE and an
 * error answer keeps the registry code its body carried.
 *
 * The one place `trinity mcp` calls the hub, with the bearer token
 * (--token or $TRINITY_TOKEN) when the hub has hub.auth.tokens.
 */
import type { HubSummary, InstanceList, MessageList, TaskAdmitted, TaskDetail, TaskList } from '../contract/http.js'
import type { TaskSubmit } from '../contract/payloads/task.js'
import { TrinityError } from '../errors.js'
import { HttpError, request } from '../cli/http-client.js'

export class HubApi {
  constructor(readonly base: string, private readonly token?: string) {}

  task(id: string): Promise<TaskDetail> {
    return this.call<TaskDetail>('GET', `/tasks/${encodeURIComponent(id)}`)
  }

  submit(task: TaskSubmit): Promise<TaskAdmitted> {
    return this.call<TaskAdmitted>('POST', '/task', task)
  }

  summary(): Promise<HubSummary> {
    return this.call<HubSummary>('GET', '/')
  }

  instances(): Promise<InstanceList> {
    return this.call<InstanceList>('GET', '/instances')
  }

  /** Counts by state only: limit=1 keeps the answer small. */
  taskCounts(): Promise<TaskList['counts']> {
    return this.call<TaskList>('GET', '/tasks?limit=1').then((list) => list.counts)
  }

  messages(filter: { limit?: number | undefined; from?: string | undefined; to?: string | undefined }): Promise<MessageList> {
    const query = new URLSearchParams()
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query.set(key, String(value))
    const qs = query.toString()
    return this.call<MessageList>('GET', `/messages${qs === '' ? '' : `?${qs}`}`)
  }

  /** A hub error answer as a TrinityError with its code; TRINITY_ERR_HUB_UNREACHABLE passes through. */
  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    try {
      return await request<T>(this.base, method, path, body, this.token)
    } catch (err) {
      if (err instanceof HttpError) throw new TrinityError(err.code ?? 'TRINITY_ERR_INTERNAL', err.message, { cause: err })
      throw err
    }
  }
}
