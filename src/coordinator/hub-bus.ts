/**
 * The coordinator's side of the bus, behind one interface with two kinds:
 *
 * - `mqttHubBus`: an MQTT client with a persistent session (QoS 1), for an
 *   external broker (Mosquitto, NATS). Its PUBACK leaves after the message
 *   handler returns, so what the handler stores is on disk before it.
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

export interface HubPublishOptions {
  readonly qos: 0 | 1
  readonly retain: boolean
}

export interface HubBus {
  /** Where it is, for the log. */
  readonly url: string
  readonly connected: boolean
  /**
   * Subscribes to `filters` and delivers from then on, retained messages
   * first. `ack`, when the bus gives one, releases the message (its PUBACK):
   * the handler may call it later, once what it stored is committed. Without
   * one (an MQTT client), the message counts as handled when the handler returns.
   */
  start(filters: Readonly<Record<string, { qos: 0 | 1 }>>, onMessage: (topic: string, payload: Buffer, ack?: () => void) => void): Promise<void>
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
    async start(filters, onMessage) {
      const c = busClient({
        url: options.url, clientId: options.clientId, clean: false, reconnectPeriod: 500, connectTimeoutMs: 10_000,
        username: options.username, password: options.password,
      })
      client = c
      c.on('connect', () => log.info({ url: options.url }, 'coordinator connected to the bus'))
      c.on('error', (err) => log.warn({ err: err.message }, 'bus client error'))
      c.on('offline', () => log.warn('coordinator lost the bus; reconnecting'))
      c.on('message', (topic, payload) => onMessage(topic, payload))
      await firstConnect(c, { retryForMs: 15_000, error: () => new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `could not reach ${options.url}`) })
      await c.subscribeAsync({ ...filters })
    },
    publish(topic, payload, publishOptions) {
      client?.publish(topic, payload, { qos: publishOptions.qos, retain: publishOptions.retain }, (err) => {
        if (err !== undefined && err !== null) log.warn({ topic, err: err.message }, 'publish failed')
      })
    },
    async close() {
      if (client !== undefined) await client.endAsync().catch(() => undefined)
    },
  }
}
