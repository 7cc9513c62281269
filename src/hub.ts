/**
 * The hub: the composition root that wires the broker (embedded or external),
 * the HTTP server and the coordinator. The only module that knows all three;
 * the broker knows nothing of the coordinator, and the coordinator reaches
 * the broker only as a bus client.
 */
import { randomBytes } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { startEmbeddedBroker, type EmbeddedBroker } from '../broker/embedded.js'
import { registerMqttWebSocket } from '../broker/websocket.js'
import { topicsFor } from './contract/topics.js'
import type { Config } from './config/schema.js'
import { busUrl, hubHttpUrl } from './config/urls.js'
import { Coordinator, type BusCredentials } from './coordinator/coordinator.js'
import { registerRoutes } from './coordinator/http.js'
import { PAGES, registerDashboard } from '../web/server.js'
import { TrinityError } from './errors.js'
import { VERSION } from './version.js'
import { ENV } from './config/env.js'
import { HUB_USERNAME } from './hub-identity.js'
import type { Logger } from './log.js'

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

export async function startHub(config: Config, log: Logger): Promise<Hub> {
  let broker: EmbeddedBroker | undefined
  let bus: BusCredentials
  if (config.broker.mode === 'embedded') {
    // The hub's own clients use a random admin credential that never leaves this process.
    // Under `trinity start` the supervisor chose the secret and shares it with the bridge.
    const internal = { username: HUB_USERNAME, password: process.env[ENV.hubSecret] ?? randomBytes(24).toString('base64url'), role: 'admin' as const }
    broker = await startEmbeddedBroker({
      host: config.broker.host,
      port: config.broker.port,
      persistence: config.broker.persistence,
      dataDir: config.hub.dataDir,
      // One setting for both journals behind an acknowledgement: the broker's and the task store's.
      sync: config.store.sync,
      auth: config.broker.auth,
      topics: topicsFor(config.hub.topicPrefix),
      internalUsers: [internal],
      maxClientBuffer: config.limits.maxClientBuffer,
      maxPacket: config.limits.maxPacket,
      maxConnectionsPerUser: config.limits.maxConnectionsPerUser,
      session: { maxMessages: config.limits.sessionMaxMessages, maxAgeMs: config.limits.sessionMaxAgeMs },
      logger: log.child({ service: 'broker' }),
    })
    bus = { url: busUrl(config, broker.port), ...(config.broker.auth.enabled ? { username: internal.username, password: internal.password } : {}) }
  } else {
    bus = { url: config.broker.url ?? '', username: config.broker.username, password: config.broker.password }
  }

  // Typed as Fastify's own logger, so `app` is the plain FastifyInstance the routes are registered on.
  const httpLog: FastifyBaseLogger = log.child({ service: 'http' })
  const app = Fastify({
    loggerInstance: httpLog,
    logController: new LogController({ disableRequestLogging: true }),
    // One limit for HTTP bodies and MQTT payloads (the coordinator checks those): limits.maxPayload.
    bodyLimit: config.limits.maxPayload,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  })
  const coordinator = new Coordinator(config, bus, log.child({ service: 'coordinator' }))
  const cleanup = async (): Promise<void> => {
    await app.close().catch(() => undefined)
    await coordinator.stop().catch(() => undefined)
    await broker?.close().catch(() => undefined)
  }
  try {
    if (broker !== undefined && config.broker.websocket) {
      await registerMqttWebSocket(app, broker, '/mqtt', config.limits.maxPacket)
    }
    await coordinator.start()
    await registerRoutes(app, coordinator, { version: VERSION, brokerMode: config.broker.mode, maxPayload: config.limits.maxPayload, maxDepth: config.limits.maxDepth })
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
    http: httpUrl, mqtt: bus.url,
    websocket: broker !== undefined && config.broker.websocket ? `${httpUrl.replace('http', 'ws')}/mqtt` : null,
    dashboard: `${httpUrl}${PAGES.command}`,
  }, 'trinity hub started')
  let stopping: Promise<void> | undefined
  return {
    config, coordinator, app, broker, httpUrl, mqttUrl: bus.url,
    stop: () => (stopping ??= cleanup()),
  }
}
