/**
 * The embedded MQTT broker: Aedes on a TCP port (and on WebSocket streams
 * handed over by the HTTP server), with Trinity's auth/ACL policy and, when
 * asked, sessions and queued messages on disk so that a restart loses
 * nothing a persistent session was promised.
 *
 * Connections go through MqttConnection (socket-writer.ts) so that clients
 * with default settings get sub-millisecond QoS 1 round trips, and so that a
 * client that stops reading is cut off alone (`maxClientBuffer`) instead of
 * holding up delivery to everyone.
 */
// First, before Aedes loads mqtt-packet: it takes its `debug` functions as it loads (quiet-debug.ts).
import './quiet-debug.js'
import type { EventEmitter } from 'node:events'
import { mkdir } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { join } from 'node:path'
import type { Duplex, Readable } from 'node:stream'
import { Aedes, type AedesOptions, type Client } from 'aedes'
import type { BrokerUser } from '../src/config/schema.js'
import type { HubError } from '../src/contract/payloads/hub.js'
import type { TopicContract } from '../src/contract/topics.js'
import { formatSize } from '../src/config/size.js'
import { TrinityError } from '../src/errors.js'
import type { Logger } from '../src/log.js'
import { createBrokerPolicy } from './auth.js'
import type { OversizedPacket } from './mqtt-framing.js'
import { createLocalBus, type LocalBus } from './local-consumer.js'
import { MqttConnection, type BufferOverflow } from './socket-writer.js'
import { dropPacketNumberCache } from './packet-numbers.js'
import { SqlitePersistence, type SessionLimits, type StoredWillPolicy } from './sqlite-persistence.js'
import { clientIds } from '../src/net/client-ids.js'

export interface EmbeddedBrokerOptions {
  /** Bind address, e.g. '127.0.0.1'. */
  host: string
  /** TCP port; 0 = ephemeral. */
  port: number
  persistence: 'disk' | 'memory'
  /** Disk persistence lives in `${dataDir}/broker.db` (SQLite journal, see sqlite-persistence.ts). */
  dataDir: string
  /** How hard the journal syncs: `full` fsyncs each commit (power loss), `normal` survives kill -9. Default `normal`. */
  sync?: 'normal' | 'full'
  auth: { enabled: boolean; users: readonly BrokerUser[] }
  /** For ACL namespaces. */
  topics: TopicContract
  /** Extra credentials (e.g. a random admin the hub generates for its own clients), accepted even when not in config. */
  internalUsers?: readonly BrokerUser[]
  /** Bytes queued for one client that is not reading before it is disconnected (`limits.maxClientBuffer`); default no bound. */
  maxClientBuffer?: number
  /** Largest MQTT packet a client may send, fixed header included (`limits.maxPacket`); over it the connection is closed at the header. Default no bound. */
  maxPacket?: number
  /** Connections one config user may hold at once, auth on (`limits.maxConnectionsPerUser`); default no bound. */
  maxConnectionsPerUser?: number
  /** What an absent persistent session keeps, disk persistence (`limits.sessionMaxMessages`, `limits.sessionMaxAge`, which also bounds its client-id binding); default no bound. */
  session?: { readonly maxMessages: number; readonly maxAgeMs: number }
  /** mqtts: a TLS listener on `port` (0 = ephemeral) beside the plain one, with these PEM contents. */
  tls?: { cert: Buffer; key: Buffer; port: number }
  /** Longest a packet is held back for ordering (socket-writer.ts), ms; default 10. Tests raise it to see the order the discipline makes, not a race with this fallback. */
  maxHoldMs?: number
  /**
   * An in-process consumer of these filters (local-consumer.ts), subscribed
   * before the broker listens. `adoptSession`: a client id whose persistent
   * session it takes over (what an older hub queued there is handed to it).
   */
  local?: { filters: readonly string[]; adoptSession?: string }
  logger: Logger
}

export interface EmbeddedBroker {
  /** The actual bound TCP port. */
  readonly port: number
  /** The actual bound mqtts port, when `tls` was given. */
  readonly tlsPort: number | undefined
  /** Feeds one MQTT-over-WebSocket stream to the broker; `peer` (the client's address) is for the log. */
  handleStream(stream: Duplex, peer?: string): void
  readonly connectedClients: number
  /** The in-process consumer's door, when `local` was given. */
  readonly local: LocalBus | undefined
  /** Closes the server, all clients, Aedes and the store. Idempotent. */
  close(): Promise<void>
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const logger = options.logger.child({ component: 'broker' })
  // Before the first packet is written: the encoder's number cache is 6 MB of the idle hub (packet-numbers.ts).
  dropPacketNumberCache()
  // Said on hub/errors, where every client can see why a peer went away; no-op until Aedes runs.
  let sayOnHubErrors = (_error: HubError): void => undefined
  const policy = createBrokerPolicy({
    auth: options.auth,
    topics: options.topics,
    logger,
    ...(options.internalUsers === undefined ? {} : { internalUsers: options.internalUsers }),
    ...(options.maxConnectionsPerUser === undefined ? {} : { maxConnectionsPerUser: options.maxConnectionsPerUser }),
    report: (refusal) => sayOnHubErrors({
      topic: refusal.topic, code: refusal.code, reason: refusal.reason, at: Date.now(),
      ...(refusal.clientId === null ? {} : { clientId: refusal.clientId }),
    }),
  })
  // Set once Aedes runs; until then (the journal loading) every session is away.
  let connected = (_clientId: string): boolean => false
  const sessions: SessionLimits | undefined = options.session === undefined ? undefined : {
    maxMessages: options.session.maxMessages,
    maxAgeMs: options.session.maxAgeMs,
    isAbsent: (clientId) => !connected(clientId),
    exempt: (clientId) => clientId === clientIds.coordinator(options.topics.prefix) || clientId.startsWith(clientIds.bridge(options.topics.prefix, '')),
    onDrop: (clientId, count, why) => logger.warn({ clientId, dropped: count }, why === 'count'
      ? `broker dropped the oldest ${count} message(s) queued for an absent session: over limits.sessionMaxMessages, ${options.session?.maxMessages}`
      : `broker dropped ${count} message(s) queued for an absent session: older than limits.sessionMaxAge`),
  }
  const store = options.persistence === 'disk' ? await openStore(options.dataDir, options.sync ?? 'normal', policy, sessions, journalErrorLog(logger)) : undefined
  // Bound as the sessions they guard: gone with the session, or past its age.
  if (store !== undefined) policy.keepClientIds(store.clientIdJournal(), options.session?.maxAgeMs ?? Number.POSITIVE_INFINITY)

  let aedes: Aedes
  try {
    const logProtocol = logRefusedProtocol(logger)
    aedes = await Aedes.createBroker({
      ...(store === undefined ? {} : { persistence: store }),
      ...policy,
      published: releasePuback,
      preConnect: (client, packet, done) => policy.preConnect(client, packet, (error, ok) => {
        if (error !== null || !ok) done(error, ok)
        else logProtocol(client, packet, done)
      }),
    })
  } catch (error) {
    store?.close()
    throw new TrinityError('TRINITY_ERR_INTERNAL', `MQTT broker failed to start: ${String(error)}`, { cause: error })
  }
  // Aedes emits 'error' for persistence failures (its types omit the event); unhandled, it would crash the hub.
  const events: EventEmitter = aedes
  events.on('error', (error: Error) => logger.error({ err: error }, 'broker error'))
  aedes.on('clientError', (client: Client, error: Error) => logger.debug({ clientId: client.id, err: error }, 'broker client error'))
  aedes.on('connectionError', (_client: Client, error: Error) => logger.debug({ err: error }, 'broker connection error'))
  aedes.on('client', (client: Client) => logger.debug({ clientId: client.id }, 'broker client connected'))
  aedes.on('clientDisconnect', (client: Client) => logger.debug({ clientId: client.id }, 'broker client disconnected'))

  const connections = new Set<MqttConnection>()
  const running = aedes
  // Aedes's live clients by id (not in its types).
  connected = (clientId) => (running as unknown as { clients: Record<string, unknown> }).clients[clientId] !== undefined
  sayOnHubErrors = (error) => {
    running.publish({ cmd: 'publish', topic: options.topics.hubErrors, payload: Buffer.from(JSON.stringify(error)), qos: 0, retain: false, dup: false }, () => undefined)
  }
  let local: LocalBus | undefined
  if (options.local !== undefined) {
    const adoptId = options.local.adoptSession
    const packets = store === undefined || adoptId === undefined ? [] : await store.takeSession(adoptId)
    if (packets.length > 0) logger.info({ clientId: adoptId, messages: packets.length }, 'handing what an older hub queued for its coordinator session to the in-process coordinator')
    const persistence = (running as unknown as { persistence: { createRetainedStreamCombi(patterns: string[]): Readable } }).persistence
    local = await createLocalBus(running, {
      filters: options.local.filters,
      retained: (patterns) => persistence.createRetainedStreamCombi(patterns),
      adopted: packets.length === 0 || adoptId === undefined ? undefined : { packets, handled: () => store?.forgetTaken(adoptId) },
      onError: (error, topic) => logger.error({ err: error, topic }, 'in-process consumer failed on a message'),
    })
  }
  const clientIdOf = (connection: MqttConnection): string | null => (connection as { client?: Client }).client?.id ?? null

  const reportSlowConsumer = (connection: MqttConnection, overflow: BufferOverflow): void => {
    const clientId = clientIdOf(connection)
    const reason = `slow consumer disconnected: ${formatSize(overflow.bufferedBytes)} queued for it, over limits.maxClientBuffer, ${formatSize(overflow.maxBufferedBytes)}`
    logger.warn({ clientId, topic: overflow.topic ?? null, bufferedBytes: overflow.bufferedBytes }, reason)
    sayOnHubErrors({ topic: overflow.topic ?? '', code: 'TRINITY_ERR_SLOW_CONSUMER', reason, at: Date.now(), ...(clientId === null ? {} : { clientId }) })
  }

  // MQTT 3.1.1 has no reason code to send: the client sees its connection close; we say why here.
  const reportOversized = (connection: MqttConnection, peer: string, packet: OversizedPacket): void => {
    const clientId = clientIdOf(connection)
    const reason = `connection closed: a packet (type ${packet.type}) announced ${formatSize(packet.announcedBytes)}, over limits.maxPacket, ${formatSize(options.maxPacket ?? 0)}`
    logger.warn({ peer, clientId, announcedBytes: packet.announcedBytes, type: packet.type }, reason)
    sayOnHubErrors({ topic: '', code: 'TRINITY_ERR_PACKET_TOO_LARGE', reason, at: Date.now(), ...(clientId === null ? {} : { clientId }) })
  }
  let closing: Promise<void> | undefined
  // With an in-process consumer, connections wait at the door until it attaches: a publish it has not
  // handled must not be acknowledged (socket-writer.ts releases a held PUBACK after maxHoldMs), and one
  // that arrived before it could only wait in memory.
  const atDoor: [Duplex, string][] | undefined = local === undefined ? undefined : []
  let doorOpen = local === undefined

  const handle = (transport: Duplex, peer = 'unknown'): void => {
    if (closing !== undefined) {
      transport.destroy()
      return
    }
    if (!doorOpen) {
      atDoor?.push([transport, peer])
      return
    }
    const connection: MqttConnection = new MqttConnection(transport, {
      ...(options.maxClientBuffer === undefined ? {} : { maxBufferedBytes: options.maxClientBuffer }),
      ...(options.maxHoldMs === undefined ? {} : { maxHoldMs: options.maxHoldMs }),
      ...(options.maxPacket === undefined ? {} : { maxIncomingPacket: options.maxPacket }),
      onOverflow: (overflow) => reportSlowConsumer(connection, overflow),
      onOversized: (packet) => reportOversized(connection, peer, packet),
    })
    connections.add(connection)
    connection.once('close', () => connections.delete(connection))
    aedes.handle(connection)
  }

  const server = createServer({ noDelay: true }, (socket: Socket) => handle(socket, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`))
  try {
    await listen(server, options.host, options.port)
  } catch (error) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    store?.close()
    throw error
  }
  server.on('error', (error: Error) => logger.error({ err: error }, 'broker listener error'))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  // mqtts: the same broker behind TLS; the connection is handed over once the handshake is done.
  const tlsServer = options.tls === undefined ? undefined : createTlsServer({ cert: options.tls.cert, key: options.tls.key }, (socket) => {
    socket.setNoDelay(true)
    handle(socket)
  })
  if (tlsServer !== undefined && options.tls !== undefined) {
    try {
      await listen(tlsServer, options.host, options.tls.port)
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      store?.close()
      throw error
    }
    tlsServer.on('error', (error: Error) => logger.error({ err: error }, 'broker TLS listener error'))
    tlsServer.on('tlsClientError', (error: Error) => logger.debug({ err: error }, 'broker TLS handshake failed'))
  }
  const tlsAddress = tlsServer?.address()
  const tlsPort = tlsServer === undefined ? undefined : typeof tlsAddress === 'object' && tlsAddress !== null ? tlsAddress.port : options.tls?.port
  logger.info({ host: options.host, port, tlsPort: tlsPort ?? null, persistence: options.persistence, auth: options.auth.enabled }, 'MQTT broker listening')

  const close = async (): Promise<void> => {
    const serverClosed = Promise.all([
      new Promise<void>((resolve) => server.close(() => resolve())),
      new Promise<void>((resolve) => (tlsServer === undefined ? resolve() : tlsServer.close(() => resolve()))),
    ])
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    // Connections that never sent CONNECT are not Aedes clients: end them here.
    for (const connection of connections) connection.destroy()
    for (const [transport] of atDoor?.splice(0) ?? []) transport.destroy()
    await serverClosed
    store?.close()
    logger.info({ port }, 'MQTT broker closed')
  }

  return {
    port,
    tlsPort,
    handleStream: handle,
    local: local === undefined ? undefined : {
      ...local,
      async attach(onMessage) {
        await local.attach(onMessage)
        doorOpen = true
        for (const [transport, peer] of atDoor?.splice(0) ?? []) handle(transport, peer)
      },
    },
    get connectedClients(): number {
      return aedes.connectedClients
    },
    close: () => (closing ??= close()),
  }
}

/**
 * Aedes `published` hook: the client's PUBLISH has been routed (stored for
 * offline sessions, written to online subscribers), so its PUBACK may follow.
 * `client` is null for publishes the broker makes itself, whatever the types say.
 */
const releasePuback: NonNullable<AedesOptions['published']> = (packet, client, done) => {
  const from = client as Client | null
  if (from !== null && packet.qos === 1 && packet.messageId !== undefined && from.conn instanceof MqttConnection) {
    from.conn.ackRouted(packet.messageId)
  }
  done()
}

/**
 * Aedes `preConnect` hook: says who is refused for their protocol version.
 * Aedes speaks MQTT 3.1 and 3.1.1 (protocol levels 3 and 4) and answers any
 * other level with CONNACK return code 1 [MQTT-3.1.2-2] (mosquitto_sub -V 5
 * shows reason 132, "unsupported protocol version"), without a word in our
 * log. The check itself stays Aedes's; this only logs it.
 */
function logRefusedProtocol(logger: Logger): NonNullable<AedesOptions['preConnect']> {
  return (_client, packet, done) => {
    const version = packet.protocolVersion
    if (version !== 3 && version !== 4) {
      logger.warn(
        { clientId: packet.clientId === '' ? null : packet.clientId, protocolVersion: version },
        `broker refused a client: MQTT protocol level ${String(version)} is not supported; the embedded broker speaks MQTT 3.1.1 (MQTT 5 clients: broker.mode external with Mosquitto 2)`,
      )
    }
    done(null, true)
  }
}

async function openStore(dataDir: string, sync: 'normal' | 'full', wills: StoredWillPolicy, sessions: SessionLimits | undefined, onWriteError: (err: unknown) => void): Promise<SqlitePersistence> {
  await mkdir(dataDir, { recursive: true })
  const location = join(dataDir, 'broker.db')
  try {
    return new SqlitePersistence(location, { sync, wills, onWriteError, ...(sessions === undefined ? {} : { sessions }) })
  } catch (error) {
    throw new TrinityError('TRINITY_ERR_INTERNAL', `cannot open the broker store at ${location}: ${String(error)}`, { cause: error })
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (error.code === 'EADDRINUSE') {
        reject(new TrinityError('TRINITY_ERR_PORT_IN_USE', `MQTT broker cannot listen on ${host}:${port} (EADDRINUSE)`, { cause: error }))
      } else {
        reject(new TrinityError('TRINITY_ERR_INTERNAL', `MQTT broker cannot listen on ${host}:${port}: ${error.message}`, { cause: error }))
      }
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}

/** A full disk fails every journal write (a retained status every few seconds): one line per 10 s, with the count. */
function journalErrorLog(logger: Logger): (err: unknown) => void {
  let last = 0
  let since = 0
  return (err) => {
    since++
    const now = Date.now()
    if (now - last < 10_000) return
    logger.error({ err, failures: since }, 'broker journal: writes failed (disk full?); kept in memory until there is room, deferred deletes retried')
    last = now
    since = 0
  }
}
