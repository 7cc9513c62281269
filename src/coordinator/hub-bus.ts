/**
 * The coordinator's side of the bus, behind one interface with two kinds:
 *
 * - `mqttHubBus`: an MQTT client with a persistent session (QoS 1), for an
 *   external broker (Mosquitto, NATS). Its PUBACK leaves when the handler
 *   calls `ack`: at once on SQLite, whose writes are on disk when made, and
 *   once a replicated store confirms them otherwise, while the next messages
 *   are read and handled meanwhile.
 * - in embedded mode the hub hands the coordinator the broker's in-process
 *   door instead (broker/local-consumer.ts, wired in hub.ts): the same
 *   promises (retained first, nothing acknowledged before it is handled,
 *   nothing lost while the coordinator starts) without a socket, MQTT
 *   encoding or a session journal in between (issue #12).
 *
 * The conformance suite runs the hub on both (test/conformance/).
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from '../log.js'
import { TrinityError } from '../errors.js'
import { busClient, firstConnect } from '../net/bus-client.js'

/** Given to MQTT.js's handleMessage callback: read on, and send no PUBACK (this bus sends it later). */
const HELD = new Error('PUBACK held until the store vouches for the message')
const noop = (): void => undefined

/** How long closing waits for the broker to acknowledge what is in flight. */
const CLOSE_GRACE_MS = 5_000

export interface HubPublishOptions {
  readonly qos: 0 | 1
  readonly retain: boolean
}

export interface HubBus {
  /** Where it is, for the log. */
  readonly url: string
  readonly connected: boolean
  /**
   * true when a turn's messages arrive together (in-process), so they can
   * share one commit; false when each is its own turn (MQTT.js hands over one
   * packet per tick, and reads on while an `ack` is held).
   */
  readonly batches: boolean
  /**
   * Subscribes to `filters` and delivers from then on, retained messages
   * first. `ack` releases the message (its PUBACK): the handler may call it
   * later, once what it stored is durable (durable-gate.ts).
   */
  start(filters: Readonly<Record<string, { qos: 0 | 1 }>>, onMessage: (topic: string, payload: Buffer, ack: () => void) => void): Promise<void>
  /** Fire and forget; a failure is logged. */
  publish(topic: string, payload: string, options: HubPublishOptions): void
  close(): Promise<void>
}

export interface MqttHubBusOptions {
  readonly url: string
  readonly clientId: string
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly log: Logger
}

export function mqttHubBus(options: MqttHubBusOptions): HubBus {
  const { log } = options
  let client: MqttClient | undefined
  return {
    url: options.url,
    get connected() {
      return client?.connected === true
    },
    batches: false,
    async start(filters, onMessage) {
      const c = busClient({
        url: options.url, clientId: options.clientId, clean: false, reconnectPeriod: 500, connectTimeoutMs: 10_000,
        username: options.username, password: options.password,
      })
      client = c
      // Each connection's own: a PUBACK belongs to the connection its PUBLISH came on (the packet ids of
      // the next one are new), so one held past a reconnect is not sent; the broker resends that message.
      let connection = 0
      c.on('connect', () => { connection++; log.info({ url: options.url }, 'coordinator connected to the bus') })
      c.on('error', (err) => log.warn({ err: err.message }, 'bus client error'))
      c.on('offline', () => log.warn('coordinator lost the bus; reconnecting'))
      const sendPacket = (c as unknown as { _sendPacket(packet: { cmd: 'puback'; messageId: number }, cb: () => void): void })._sendPacket.bind(c)
      // MQTT.js reads the next packet once this callback is called, and sends the PUBACK (QoS 1) then when
      // it is called without an error. A message handled at once (the SQLite store: on disk when written)
      // is acknowledged that way. One whose PUBACK waits for a replicated store is released to the reader
      // with HELD (MQTT.js then sends nothing and reads on), and its PUBACK is sent here once the store
      // vouches for it: many messages are in flight to the store at once, not one per round trip. The
      // durable gate releases acknowledgements in arrival order, as MQTT 3.1.1 asks (4.6).
      c.handleMessage = (packet, done) => {
        let acked = false
        let held = false
        const arrivedOn = connection
        const ack = (): void => {
          if (acked) return
          acked = true
          if (!held) return done()
          if (packet.qos === 1 && packet.messageId !== undefined && arrivedOn === connection && c.connected) sendPacket({ cmd: 'puback', messageId: packet.messageId }, noop)
        }
        try {
          onMessage(packet.topic, packet.payload as Buffer, ack)
        } catch (err) {
          // The handler reports its own failures; one that escapes must not stop the reading.
          log.error({ err, topic: packet.topic }, 'a bus message could not be handled')
          ack()
        }
        if (!acked) {
          held = true
          done(HELD)
        }
      }
      await firstConnect(c, { retryForMs: 15_000, error: () => new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `could not reach ${options.url}`) })
      await c.subscribeAsync({ ...filters })
    },
    publish(topic, payload, publishOptions) {
      client?.publish(topic, payload, { qos: publishOptions.qos, retain: publishOptions.retain }, (err) => {
        if (err !== undefined && err !== null) log.warn({ topic, err: err.message }, 'publish failed')
      })
    },
    async close() {
      if (client === undefined) return
      // MQTT.js's graceful end waits until every QoS 1 publish in flight is acknowledged, which never
      // happens while the connection is down (a lost node, a deposed leader), and a second end() does
      // not cut it short. So the acknowledgements are given CLOSE_GRACE_MS while connected, and what is
      // still in flight then is left to the broker (the session resends it to the next hub).
      const c = client
      const inFlight = (): boolean => Object.keys(c.outgoing).length > 0
      if (c.connected && inFlight()) {
        await new Promise<void>((resolve) => {
          const done = (): void => { clearTimeout(timer); c.off('outgoingEmpty', done); c.off('close', done); resolve() }
          const timer = setTimeout(done, CLOSE_GRACE_MS)
          c.on('outgoingEmpty', done)
          c.on('close', done)
        })
      }
      await c.endAsync(!c.connected || inFlight()).catch(() => undefined)
    },
  }
}
