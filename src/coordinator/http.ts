/**
 * The HTTP API (seed-compatible), one schema per route. Validation and JSON
 * errors become 400 with the offending field named; TrinityErrors carry their
 * own status. Writes answer only after the store has the change. Bodies are
 * bounded by `limits.maxDepth` right after parsing, before the schema (a 400
 * naming the field): a value nested thousands deep would overflow the stack
 * when it is stored (issue #14).
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { TaskRespond, TaskSubmit } from '../contract/payloads/task.js'
import { SendRequest } from '../contract/payloads/message.js'
import { tooDeepField, tooDeepReason } from '../contract/payloads/validate.js'
import {
  ERROR_RESPONSES, HubHealth, HubSummary, IdParams, InstanceList, MAX_FULL_TASKS, MAX_TASKS, MessageList, MessageListQuery,
  TaskAdmitted, TaskAnswered, TaskDetail, TaskList, TaskListQuery,
} from '../contract/http.js'
import { formatSize } from '../config/size.js'
import { TrinityError } from '../errors.js'
import type { Coordinator } from './coordinator.js'
import { principalOf } from './http-auth.js'
import type { Metrics } from './metrics.js'


/** The 413 for a body over `limits.maxPayload` (Fastify's `bodyLimit`, set from it in hub.ts). */
function payloadTooLarge(maxPayload: number): TrinityError {
  return new TrinityError('TRINITY_ERR_PAYLOAD_TOO_LARGE', `the body is over limits.maxPayload, ${formatSize(maxPayload)}`, { field: 'body' })
}

/**
 * Runs `work` after every list queued before it, and after a pause as long as the list before took: lists
 * get at most half the event loop, whatever number of clients loop on them. One turn (setImmediate) was not
 * enough: the bus's own hops (Aedes, MQTT.js) each take several turns, and a round trip still waited ~28 s.
 */
function oneAtATime(): <T>(work: () => T) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  let lastMs = 0
  return <T>(work: () => T): Promise<T> => {
    const result = tail.then(() => new Promise<void>((resolve) => setTimeout(resolve, lastMs))).then(() => {
      const startedAt = performance.now()
      try { return work() } finally { lastMs = Math.min(1000, Math.round(performance.now() - startedAt)) }
    })
    tail = result.catch(() => undefined)
    return result
  }
}

export async function registerRoutes(app: FastifyInstance, coordinator: Coordinator, info: { version: string; brokerMode: string; maxPayload: number; maxDepth: number }): Promise<void> {
  const api = app.withTypeProvider<TypeBoxTypeProvider>()
  // Made at the first scrape: prom-client (with @opentelemetry/api, about 85 modules) and its runtime
  // monitors stay out of a hub nobody scrapes (issue #12).
  let metrics: Promise<Metrics> | undefined
  const scrape = (): Promise<Metrics> => (metrics ??= import('./metrics.js').then(({ Metrics }) => new Metrics(coordinator)))
  const listTurn = oneAtATime()

  // A write's answer leaves once the store vouches for the change (coordinator.settled(): at once on
  // SQLite, whose writes are on disk when made; a replicated store confirms later). A store that cannot
  // vouch fails the request with its reason: the change may be lost, so it is not reported as done.
  // Refusals claim nothing: they leave at once (and so does the error reply of a store that cannot vouch).
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.method === 'GET' || request.method === 'HEAD' || reply.statusCode >= 400) return payload
    const pending = coordinator.settled()
    if (pending !== undefined) await pending
    return payload
  })

  // After the JSON parser, before the schema and the handler: every route registered from here on.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) return
    const field = tooDeepField(request.body, info.maxDepth)
    if (field === null) return
    const named = field === '(payload)' ? 'body' : field
    throw new TrinityError('TRINITY_ERR_PAYLOAD_TOO_DEEP', tooDeepReason(named, info.maxDepth), { field: named })
  })

  app.setErrorHandler((error: FastifyError | TrinityError, request, reply) => {
    if (error instanceof TrinityError) return reply.status(error.statusCode).send({ error: error.toJSON() })
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.status(413).send({ error: payloadTooLarge(info.maxPayload).toJSON() })
    // A body that is not JSON (curl -d sends form encoding, fetch a string as text/plain): say what to send.
    const type = request.headers['content-type']
    if (error.statusCode === 415 || (error.validationContext === 'body' && !/^application\/json\b/i.test(type ?? ''))) {
      const unsupported = new TrinityError('TRINITY_ERR_UNSUPPORTED_MEDIA_TYPE', `content-type: expected application/json, got ${type ?? 'none'}`, { field: 'content-type' })
      return reply.status(415).send({ error: unsupported.toJSON() })
    }
    if (error.validation !== undefined) {
      const first = error.validation[0]
      const params = (first?.params ?? {}) as { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] }
      const path = (first?.instancePath ?? '').slice(1).replaceAll('/', '.')
      const field = params.missingProperty ?? params.additionalProperty ?? path
      const where = error.validationContext ?? 'body'
      const allowed = params.allowedValues === undefined ? '' : ` (${params.allowedValues.map(String).join(', ')})`
      return reply.status(400).send({
        error: { code: 'TRINITY_ERR_BAD_REQUEST', message: `${where}${field === '' ? '' : `.${field}`} ${first?.message ?? 'is invalid'}${allowed}`, field: field === '' ? where : field },
      })
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: { code: 'TRINITY_ERR_BAD_REQUEST', message: error.message, field: 'body' } })
    }
    app.log.error({ err: error }, 'request failed')
    return reply.status(500).send({ error: { code: 'TRINITY_ERR_INTERNAL', message: 'internal error' } })
  })

  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: new TrinityError('TRINITY_ERR_NOT_FOUND', `${request.method} ${request.url}`).toJSON() })
  })

  // Response schemas (src/contract/http.ts) serialize the answers: what a schema does not name is dropped.
  api.get('/', { schema: { response: { 200: HubSummary, ...ERROR_RESPONSES } } }, async () => ({
    name: 'trinity' as const,
    version: info.version,
    uptimeSeconds: Math.round((Date.now() - coordinator.startedAt) / 1000),
    broker: { mode: info.brokerMode, connected: coordinator.connected },
    ...coordinator.stats(),
  }))

  // A full store is still 200: the hub runs, keeps accepted tasks in memory and retries their writes, and a
  // restart would not make room; `store: "full"` says why submissions get 507 (issue #14).
  api.get('/health', { schema: { response: { 200: HubHealth, 503: HubHealth } } }, async (_request, reply) => {
    const ok = coordinator.connected
    const storeFull = coordinator.scheduler.storeFull
    return reply.status(ok ? 200 : 503).send({
      status: ok && !storeFull ? 'ok' : 'degraded',
      bus: ok ? 'connected' : 'disconnected',
      store: storeFull ? 'full' : 'ok',
      role: 'leader',
    })
  })

  api.get('/instances', { schema: { response: { 200: InstanceList, ...ERROR_RESPONSES } } }, async () => ({ instances: coordinator.instances() }))

  api.delete('/instances/:id', { schema: { params: IdParams } }, async (request) => coordinator.forgetInstance(request.params.id))

  api.post('/instances/:id/restart', { schema: { params: IdParams } }, async (request, reply) =>
    reply.status(202).send(coordinator.restartInstance(request.params.id, `http ${request.ip}`)))

  api.post('/task', { schema: { body: TaskSubmit, response: { 200: TaskAdmitted, 202: TaskAdmitted, ...ERROR_RESPONSES } } }, async (request, reply) => {
    const { task, created } = coordinator.submit(request.body)
    const assigned = task.assignments.flatMap((a) => (a.instance === null ? [] : [a.instance]))
    return reply.status(created ? 202 : 200).send({ id: task.id, state: task.state, assigned, task })
  })

  api.get('/tasks', {
    schema: {
      querystring: TaskListQuery,
      response: { 200: TaskList, ...ERROR_RESPONSES },
    },
  }, async (request) => {
    const limit = request.query.limit ?? 100
    // Whole records weigh what their bodies weigh (up to limits.maxPayload each): a smaller page, so one
    // request cannot hold the event loop (and every task's round trip) for seconds (issue #14).
    if (request.query.full === true && limit > MAX_FULL_TASKS) {
      throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `limit: at most ${MAX_FULL_TASKS} with full=true (${MAX_TASKS} for summaries), got ${limit}`, { field: 'limit' })
    }
    const filter = request.query.state === undefined ? { limit } : { state: request.query.state, limit }
    // One list at a time, at most half the event loop (oneAtATime): 20 clients listing 1,000 tasks in a loop
    // took turns with nothing else, and a task's round trip went from 9 ms to 11 s (issue #14). Queued
    // lists wait without CPU; between two, the bus and every other request get their turn.
    return listTurn(() => {
      // Summaries by default: a list of big tasks must not weigh what their bodies weigh (issue #10), nor
      // cost their parsing (the store keeps each summary beside its record, issue #14).
      const { scheduler } = coordinator
      return { counts: coordinator.taskCounts(), tasks: request.query.full === true ? scheduler.list(filter) : scheduler.listSummaries(filter) }
    })
  })

  api.get('/tasks/:id', { schema: { params: IdParams, response: { 200: TaskDetail, ...ERROR_RESPONSES } } }, async (request) => {
    const task = coordinator.scheduler.get(request.params.id)
    if (task === undefined) throw new TrinityError('TRINITY_ERR_TASK_NOT_FOUND', request.params.id)
    // `waiting`: why an unfinished task is not moving (not stored: it is the registry's view right now).
    const waiting = coordinator.waiting(task)
    return waiting === null ? task : { ...task, waiting }
  })

  api.post('/tasks/:id/cancel', { schema: { params: IdParams } }, async (request) => coordinator.scheduler.cancel(request.params.id))
  // The answer to a task waiting for input (needs_input): on disk before the 202, then in the asking instance's inbox.
  api.post('/tasks/:id/respond', { schema: { params: IdParams, body: TaskRespond, response: { 202: TaskAnswered, ...ERROR_RESPONSES } } }, async (request, reply) => {
    const { task, instance } = coordinator.scheduler.respond(request.params.id, request.body)
    return reply.status(202).send({ id: task.id, state: task.state, instance })
  })
  api.post('/tasks/:id/retry', { schema: { params: IdParams } }, async (request, reply) => reply.status(202).send(coordinator.scheduler.retry(request.params.id)))

  api.post('/send', { schema: { body: SendRequest } }, async (request, reply) => {
    const { from, to, message, instance } = request.body
    // A token speaks for its own name only; an admin token may relay for anyone (a bridge, an operator).
    const principal = principalOf(request)
    if (principal !== undefined && principal.scope !== 'admin' && from !== principal.name) {
      throw new TrinityError('TRINITY_ERR_FORBIDDEN', `from: token ${principal.name} (scope ${principal.scope}) may send only as "${principal.name}", not "${from}"`, { field: 'from' })
    }
    if (coordinator.isRemoteComputer(to)) return reply.status(202).send(coordinator.sendToComputer(from, to, message, instance))
    return reply.status(202).send(coordinator.send(from, to, message))
  })

  api.post('/sync', async (_request, reply) => {
    coordinator.requestSync('POST /sync')
    return reply.status(202).send({ requested: true })
  })

  api.get('/messages', {
    schema: {
      querystring: MessageListQuery,
      response: { 200: MessageList, ...ERROR_RESPONSES },
    },
  }, async (request) => {
    const { limit, from, to } = request.query
    const filter = { ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) }
    return { messages: coordinator.store.recentMessages(limit ?? 50, filter) }
  })

  api.get('/metrics', async (_request, reply) => {
    const registry = await scrape()
    return reply.type(registry.contentType).send(await registry.render())
  })
}
