/**
 * The coordinator's side of the bus, behind one interface with two kinds:
 *
 * - `mqttHubBus`: an MQTT client with a persistent session (QoS 1), for an
 *   external broker (Mosquitto, NATS). Its PUBACK leaves when the handler
 *   calls `ack`: at once on SQLite, whose writes are on disk when made, and
 *   once a replicated store confirms them otherwise.
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
   * true when many messages arrive before any is acknowledged (in-process),
   * so a turn's messages can share one commit; false when the next message
   * waits for this one's `ack` (MQTT.js reads its socket one packet at a time).
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
      c.on('connect', () => log.info({ url: options.url }, 'coordinator connected to the bus'))
      c.on('error', (err) => log.warn({ err: err.message }, 'bus client error'))
      c.on('offline', () => log.warn('coordinator lost the bus; reconnecting'))
      // MQTT.js sends the PUBACK (QoS 1) and reads the next packet when this callback is called.
      c.handleMessage = (packet, done) => {
        let acked = false
        const ack = (): void => { if (!acked) { acked = true; done() } }
        try {
          onMessage(packet.topic, packet.payload as Buffer, ack)
        } catch (err) {
          // The handler reports its own failures; one that escapes must not stop the reading.
          log.error({ err, topic: packet.topic }, 'a bus message could not be handled')
          ack()
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
