/**
 * The hub: the composition root that wires the broker (embedded or external),
 * the HTTP server and the coordinator. The only module that knows all three;
 * the broker knows nothing of the coordinator, and the coordinator reaches
 * the broker only as a bus client.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { startEmbeddedBroker, type EmbeddedBroker } from '../broker/embedded.js'
import { registerMqttWebSocket } from '../broker/websocket.js'
import { topicsFor } from './contract/topics.js'
import type { Config } from './config/schema.js'
import { busUrl, hubHttpUrl } from './config/urls.js'
import { isLoopbackHost } from './config/exposure.js'
import { Coordinator } from './coordinator/coordinator.js'
import type { HubBus } from './coordinator/hub-bus.js'
import { subscriptionsFor } from './coordinator/bus-handlers.js'
import { clientIds } from './net/client-ids.js'
import { registerRoutes } from './coordinator/http.js'
import { STORE_FILE, SqliteStore } from './coordinator/sqlite-store.js'
import type { TaskStore } from './coordinator/task-store.js'
import { PAGES, registerDashboard } from '../web/server.js'
import { TrinityError } from './errors.js'
import { VERSION } from './version.js'
import { ENV } from './config/env.js'
import { DASHBOARD_USERNAME, HUB_USERNAME } from './hub-identity.js'
import { registerAuthRoutes, registerHttpAuth } from './coordinator/http-auth.js'
import { lazySchemaCompilers } from './coordinator/lazy-schema-compilers.js'
import type { Logger } from './log.js'
import { startHeapSettle } from './heap-settle.js'

export interface Hub {
  readonly config: Config
  readonly coordinator: Coordinator
  readonly app: FastifyInstance
  readonly broker: EmbeddedBroker | undefined
  /** http://host:port of the API. */
  readonly httpUrl: string
  /** The bus URL clients should use (the embedded broker's TCP port, or the external URL). */
  readonly mqttUrl: string
  stop(): Promise<void>
}

/** A single hub on its SQLite store (store.backend sqlite); cluster-hub.ts starts one on nats-kv. */
export async function startHub(config: Config, log: Logger): Promise<Hub> {
  if (config.store.backend !== 'sqlite') throw new TrinityError('TRINITY_ERR_INTERNAL', `startHub runs the sqlite backend; store.backend ${config.store.backend} starts through cluster-hub.ts`)
  // The store first: a corrupt or empty trinity.db stops the hub before the broker takes a single
  // connection (or acknowledges a publish it could not keep).
  const store = new SqliteStore({ file: join(config.hub.dataDir, STORE_FILE), sync: config.store.sync })
  try {
    return await startWithStore(config, log, store)
  } catch (err) {
    store.close()
    throw err
  }
}

/** The hub on a store already open (a cluster's leader opens its own): the broker, the coordinator, HTTP. */
export async function startWithStore(config: Config, log: Logger, store: TaskStore): Promise<Hub> {
  let broker: EmbeddedBroker | undefined
  let bus: HubBus
  /** The read-only bus login GET /auth/bus hands the dashboards; null when the broker needs none. */
  let pageLogin: { username: string; password: string } | null = null
  if (config.broker.mode === 'embedded') {
    // The hub's own clients use a random admin credential that never leaves this process.
    // Under `trinity start` the supervisor chose the secret and shares it with the bridge.
    const internal = { username: HUB_USERNAME, password: process.env[ENV.hubSecret] ?? randomBytes(24).toString('base64url'), role: 'admin' as const }
    // Derived from that secret, so a page's login outlives a hub restart under one supervisor.
    const reader = { username: DASHBOARD_USERNAME, password: createHash('sha256').update(`dashboard:${internal.password}`).digest('base64url'), role: 'reader' as const }
    if (config.broker.auth.enabled) pageLogin = { username: reader.username, password: reader.password }
    broker = await startEmbeddedBroker({
      host: config.broker.host,
      port: config.broker.port,
      persistence: config.broker.persistence,
      dataDir: config.hub.dataDir,
      // One setting for both journals behind an acknowledgement: the broker's and the task store's.
      sync: config.store.sync,
      auth: config.broker.auth,
      topics: topicsFor(config.hub.topicPrefix),
      internalUsers: [reader, internal],
      maxClientBuffer: config.limits.maxClientBuffer,
      maxPacket: config.limits.maxPacket,
      maxConnectionsPerUser: config.limits.maxConnectionsPerUser,
      session: { maxMessages: config.limits.sessionMaxMessages, maxAgeMs: config.limits.sessionMaxAgeMs },
      ...(config.broker.tls === null ? {} : {
        tls: { cert: readPem(config.broker.tls.cert, 'broker.tls.cert'), key: readPem(config.broker.tls.key, 'broker.tls.key'), port: config.broker.tls.port },
      }),
      // The coordinator reads the bus in-process (hub-bus.ts), subscribed before the broker listens. Its
      // persistent session of older versions is taken over, so nothing queued there is stranded.
      local: { filters: Object.keys(subscriptionsFor(topicsFor(config.hub.topicPrefix))), adoptSession: clientIds.coordinator(config.hub.topicPrefix) },
      logger: log.child({ service: 'broker' }),
    })
    bus = inProcessBus(broker, busUrl(config, broker.port), log.child({ service: 'coordinator' }))
  } else {
    // Loaded here only: an embedded hub never loads MQTT.js (about 20 MB of its idle RSS, issue #12).
    const { mqttHubBus } = await import('./coordinator/hub-bus.js')
    bus = mqttHubBus({
      url: config.broker.url ?? '', clientId: clientIds.coordinator(config.hub.topicPrefix),
      username: config.broker.username, password: config.broker.password, log: log.child({ service: 'coordinator' }),
    })
  }

  // Typed as Fastify's own logger, so `app` is the plain FastifyInstance the routes are registered on.
  const httpLog: FastifyBaseLogger = log.child({ service: 'http' })
  // HTTPS (and so WSS for /mqtt) with hub.tls. Typed as the plain instance the routes are written against:
  // Fastify's routes, hooks and replies are the same over either server.
  const https = config.hub.tls === null ? null : { cert: readPem(config.hub.tls.cert, 'hub.tls.cert'), key: readPem(config.hub.tls.key, 'hub.tls.key') }
  // A request must arrive whole, headers and body, within hub.requestTimeout (Fastify's default, 0, never
  // cuts off a client trickling a byte every few seconds; issue #14). Node checks running requests every
  // connectionsCheckingInterval (30 s by default), so it is a tenth of the timeout here: the cut comes
  // close to the bound. No connectionTimeout (socket idle): a trickle defeats it, and it would cut /mqtt.
  const timeouts = requestTimeouts(config.hub.requestTimeoutMs)
  const app = Fastify({
    ...(https === null ? { http: timeouts } : { https: { ...https, ...timeouts } }),
    requestTimeout: config.hub.requestTimeoutMs,
    loggerInstance: httpLog,
    logController: new LogController({ disableRequestLogging: true }),
    // One limit for HTTP bodies and MQTT payloads (the coordinator checks those): limits.maxPayload.
    bodyLimit: config.limits.maxPayload,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    // Fastify's own compilers, each schema compiled at its route's first request, not at start (issue #12).
    schemaController: { compilersFactory: lazySchemaCompilers() },
  })
  const coordinator = new Coordinator(config, bus, log.child({ service: 'coordinator' }), store)
  const cleanup = async (): Promise<void> => {
    await app.close().catch(() => undefined)
    await coordinator.stop().catch(() => undefined)
    await broker?.close().catch(() => undefined)
  }
  try {
    // First: its hook guards every route registered after it, /mqtt and the dashboards included.
    registerHttpAuth(app, { tokens: config.hub.auth.tokens, allowedOrigins: config.hub.allowedOrigins })
    if (broker !== undefined && config.broker.websocket) {
      await registerMqttWebSocket(app, broker, '/mqtt', config.limits.maxPacket)
    }
    await coordinator.start()
    await registerRoutes(app, coordinator, { version: VERSION, brokerMode: config.broker.mode, maxPayload: config.limits.maxPayload, maxDepth: config.limits.maxDepth })
    registerAuthRoutes(app, { busLogin: pageLogin })
    // The dashboards are bus clients served from here; they import nothing of the coordinator.
    await registerDashboard(app, { topicPrefix: config.hub.topicPrefix, syncEnabled: config.sync.enabled })
    await app.listen({ host: config.hub.host, port: config.hub.port }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') throw new TrinityError('TRINITY_ERR_PORT_IN_USE', `${config.hub.host}:${config.hub.port} (hub.port)`, { cause: err })
      throw err
    })
  } catch (err) {
    await cleanup()
    throw err
  }
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.hub.port
  const httpUrl = hubHttpUrl(config, port)
  log.info({
    // What the sockets are bound to (0.0.0.0 is every interface), beside the URLs a client here uses.
    listening: {
      http: typeof address === 'object' && address !== null ? hostPort(address) : String(address),
      mqtt: broker === undefined ? null : `${config.broker.host}:${broker.port}`,
      mqtts: broker?.tlsPort === undefined ? null : `${config.broker.host}:${broker.tlsPort}`,
    },
    auth: { tokens: config.hub.auth.tokens.length, broker: config.broker.auth.enabled },
    http: httpUrl, mqtt: bus.url,
    websocket: broker !== undefined && config.broker.websocket ? `${httpUrl.replace('http', 'ws')}/mqtt` : null,
    dashboard: `${httpUrl}${PAGES.command}`,
  }, 'trinity hub started')
  if (config.hub.allowInsecure && (!isLoopbackHost(config.hub.host) || !isLoopbackHost(config.broker.host))) {
    log.warn({ hub: config.hub.host, broker: config.broker.host, tokens: config.hub.auth.tokens.length, brokerAuth: config.broker.auth.enabled }, 'hub.allowInsecure: listening beyond loopback without the auth that would require (README, Security)')
  }
  // Collects once a burst is over, where the process was started with --expose-gc (hub-node-args.ts).
  const settle = startHeapSettle()
  let stopping: Promise<void> | undefined
  return {
    config, coordinator, app, broker, httpUrl, mqttUrl: bus.url,
    stop: () => { settle?.stop(); return (stopping ??= cleanup()) },
  }
}

/** The embedded broker's in-process door as the coordinator's bus: connected for as long as the broker runs. */
function inProcessBus(broker: EmbeddedBroker, url: string, log: Logger): HubBus {
  const local = broker.local
  if (local === undefined) throw new TrinityError('TRINITY_ERR_INTERNAL', 'the embedded broker was started without its in-process consumer')
  let open = false
  return {
    url,
    get connected() { return open },
    batches: true,
    async start(_filters, onMessage) {
      // The filters were given to the broker before it listened (`local` above).
      await local.attach(onMessage)
      open = true
    },
    publish(topic, payload, options) {
      local.publish(topic, payload, options, (err) => { if (err !== undefined) log.warn({ topic, err: err.message }, 'publish failed') })
    },
    async close() {
      open = false
      local.detach()
    },
  }
}

/** A PEM file named in the config; load.ts checked it exists, so a failure here is its permissions or a race. */
export function readPem(path: string, field: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new TrinityError('TRINITY_ERR_CONFIG_INVALID', `${field}: cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
}

/** `0.0.0.0:8900`, `[::]:8900`: an address as the socket reports it. */
function hostPort(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`
}

/** Node's server options behind hub.requestTimeout: headers within it too, checked at a tenth of it (1–30 s). */
function requestTimeouts(requestTimeoutMs: number): { headersTimeout: number; connectionsCheckingInterval: number } {
  if (requestTimeoutMs === 0) return { headersTimeout: 60_000, connectionsCheckingInterval: 30_000 }
  return {
    headersTimeout: Math.min(60_000, requestTimeoutMs),
    connectionsCheckingInterval: Math.min(30_000, Math.max(1000, Math.round(requestTimeoutMs / 10))),
  }
}
