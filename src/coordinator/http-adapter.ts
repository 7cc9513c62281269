/**
 * The HTTP adapter: instances that are plain HTTP servers (as the seed's
 * were) take part with no MQTT code. A task assigned to one is POSTed to
 * `{url}/task` as `{id, type, content, priority, attempt, leaseToken}`; a 2xx
 * JSON answer completes it (its `output` field, or the whole body), anything
 * else fails it with the reason. Health comes from GET `{url}/health` (see
 * health.ts). Reports go through the same path as MQTT reports, so leases,
 * retries and stale-report protection apply unchanged. Requests go by
 * node:http (src/net/http-request.ts): fetch refuses ports such as 6000.
 * An answer nesting deeper than `limits.maxDepth` fails the task, as a
 * report over MQTT would be refused (issue #14).
 */
import type { Report } from '../contract/payloads/task.js'
import type { InboxFrame } from '../contract/payloads/inbox.js'
import { tooDeepField, tooDeepReason } from '../contract/payloads/validate.js'
import { HttpRequestError, httpRequestTo } from '../net/http-request.js'
import type { Logger } from '../log.js'

export interface HttpAdapterDeps {
  report: (instanceId: string, report: Report) => void
  /** Longest a POST may take: the lease. */
  timeoutMs: number
  /** `limits.maxDepth`. */
  maxDepth: number
  log: Logger
}

export class HttpAdapter {
  private readonly inFlight = new Map<string, AbortController>()

  constructor(private readonly deps: HttpAdapterDeps) {}

  deliver(instanceId: string, url: string, frame: InboxFrame): void {
    switch (frame.kind) {
      case 'task':
        // After the dispatch that assigned it has returned: reports re-enter the scheduler.
        queueMicrotask(() => void this.post(instanceId, url, frame))
        return
      case 'cancel':
        this.inFlight.get(frame.leaseToken)?.abort()
        return
      case 'ping':
      case 'message':
      case 'input':
        // health is GET {url}/health; plain HTTP instances have no message endpoint, and never
        // ask for input (their one answer to the POST ends the attempt): needs_input is for bus instances.
        return
    }
  }

  stop(): void {
    for (const controller of this.inFlight.values()) controller.abort()
    this.inFlight.clear()
  }

  private async post(instanceId: string, url: string, frame: Extract<InboxFrame, { kind: 'task' }>): Promise<void> {
    const base = { taskId: frame.task.id, leaseToken: frame.leaseToken }
    const controller = new AbortController()
    this.inFlight.set(frame.leaseToken, controller)
    this.deps.report(instanceId, { ...base, state: 'started' })
    let report: Report
    try {
      const response = await httpRequestTo(`${url}/task`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...frame.task, attempt: frame.attempt, leaseToken: frame.leaseToken }),
        signal: controller.signal,
        timeoutMs: this.deps.timeoutMs,
      })
      const text = response.text()
      if (!response.ok) {
        report = { ...base, state: 'failed', error: `HTTP ${response.status} from ${url}/task: ${text.slice(0, 500)}` }
      } else {
        let body: unknown = text
        try { body = JSON.parse(text) } catch { /* a plain-text answer is the output */ }
        const output = body !== null && typeof body === 'object' && 'output' in body ? body.output : body
        const tooDeep = tooDeepField({ output }, this.deps.maxDepth)
        report = tooDeep === null
          ? { ...base, state: 'completed', output }
          : { ...base, state: 'failed', error: `the answer of ${url}/task: ${tooDeepReason(tooDeep, this.deps.maxDepth)}` }
      }
    } catch (err) {
      if (controller.signal.aborted) return // cancelled: the hub already knows
      const cause = err instanceof HttpRequestError ? err.message : String(err)
      report = { ...base, state: 'failed', error: `${url}/task: ${cause}` }
    } finally {
      this.inFlight.delete(frame.leaseToken)
    }
    this.deps.log.debug({ instance: instanceId, taskId: frame.task.id, state: report.state }, 'http adapter report')
    this.deps.report(instanceId, report)
  }
}
