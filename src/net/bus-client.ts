/**
 * How Trinity's own processes open an MQTT connection, in one place: the
 * coordinator, the supervisor, the agent SDK, the git bridge, `trinity tail`
 * and the benches. Shared plumbing without a role: it imports nothing but
 * MQTT.js, so the SDK and the bridge use it and stay free of the coordinator.
 *
 * - TCP no-delay on every connection, the first and each reconnect. A
 *   requester whose last segment is a PUBACK and whose next is a PUBLISH
 *   waits out the broker's delayed ACK (40 ms a round trip on loopback) under
 *   Nagle, and no broker-side discipline can prevent it (broker/socket-writer.ts).
 * - Client ids by one scheme (client-ids.ts).
 * - The first connect awaited one of two ways (`FirstConnect`).
 * - A URL may be a comma-separated list (`mqtt://a:1883,mqtt://b:1883`):
 *   the nodes of one clustered broker (NATS). The first connect goes to the
 *   first; each reconnect to the next, round the list (MQTT.js `servers`), so
 *   a client whose node died lands on another node of the cluster, where its
 *   persistent session lives on.
 *
 * Options left out keep MQTT.js's defaults (a random `mqttjs_…` id, a clean
 * session, a reconnect every second, 30 s for a CONNACK), so each caller says
 * only what differs, as it did with MQTT.js directly.
 */
import type { Socket } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'

export interface BusClientOptions {
  /** One broker URL, or several separated by commas (see the header). */
  readonly url: string
  readonly clientId?: string
  /** MQTT clean session [MQTT-3.1.2-6]; false: a persistent session the broker queues QoS 1 for. */
  readonly clean?: boolean
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly will?: IClientOptions['will']
  /** ms between reconnects; 0: never reconnect. */
  readonly reconnectPeriod?: number
  /** ms MQTT.js waits for each CONNACK. */
  readonly connectTimeoutMs?: number
  /** Default true; false only to measure what it is for (bench/broker-latency.ts). */
  readonly noDelay?: boolean
}

/**
 * How the first connect may fail:
 * - `{ retryForMs, error }`: MQTT.js keeps retrying (every `reconnectPeriod`)
 *   and errors meanwhile are the caller's to log; after `retryForMs` without a
 *   CONNACK, `error()` rejects. The client is left as it is (the caller ends it).
 *   For the hub and the bridge, whose broker may still be starting.
 * - `'first-error'`: the first error (refused, bad login, no CONNACK) rejects
 *   and ends the client, as `mqtt.connectAsync` does. For the CLI and the
 *   benches, and the SDK, which decides its own retries.
 */
export type FirstConnect = { readonly retryForMs: number; readonly error: () => Error } | 'first-error'


/** Turns Nagle off on the client's current socket (a reconnect makes a new one). */
export function setNoDelay(client: MqttClient): void {
  ;(client.stream as Partial<Socket> | undefined)?.setNoDelay?.(true)
}

/** The URLs of a comma-separated list, trimmed, empty items dropped. */
function busUrls(url: string): string[] {
  return url.split(',').map((u) => u.trim()).filter((u) => u !== '')
}

/** MQTT.js's `servers` for a list of two or more URLs: it moves to the next on each reconnect. */
function servers(urls: readonly string[]): Pick<IClientOptions, 'servers'> {
  if (urls.length < 2) return {}
  return {
    servers: urls.map((u) => {
      const parsed = new URL(u)
      // The config schema allows mqtt, mqtts, ws, wss and tcp, all of them MQTT.js server protocols.
      const protocol = parsed.protocol.replace(/:$/, '') as 'mqtt' | 'mqtts' | 'ws' | 'wss' | 'tcp'
      return { host: parsed.hostname, port: Number(parsed.port === '' ? (protocol === 'mqtts' ? 8883 : 1883) : parsed.port), protocol }
    }),
  }
}

/** A client, connecting; it does not wait (see `firstConnect`, `connectBus`). */
export function busClient(options: BusClientOptions): MqttClient {
  const urls = busUrls(options.url)
  const client = mqtt.connect(urls[0] ?? options.url, {
    ...servers(urls),
    ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    ...(options.clean === undefined ? {} : { clean: options.clean }),
    ...(options.reconnectPeriod === undefined ? {} : { reconnectPeriod: options.reconnectPeriod }),
    ...(options.connectTimeoutMs === undefined ? {} : { connectTimeout: options.connectTimeoutMs }),
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.will === undefined ? {} : { will: options.will }),
  })
  // First among the connect listeners, so a caller's first publish already goes out without Nagle.
  if (options.noDelay !== false) client.on('connect', () => setNoDelay(client))
  return client
}

/** Resolves on the client's first CONNACK; fails as `how` says. */
export function firstConnect(client: MqttClient, how: FirstConnect): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = how === 'first-error' ? undefined : setTimeout(() => { settle(); reject(how.error()) }, how.retryForMs)
    const settle = (): void => {
      clearTimeout(timer)
      client.off('connect', onConnect)
      client.off('error', onError)
    }
    const onConnect = (): void => { settle(); resolve() }
    const onError = (err: Error): void => { settle(); client.end(); reject(err) }
    client.on('connect', onConnect)
    if (how === 'first-error') client.on('error', onError)
  })
}

/**
 * `busClient` and `firstConnect` together. `setup` runs before anything can
 * arrive: listeners for what a broker sends right behind the CONNACK (a
 * persistent session's queue), which MQTT.js emits before this resolves.
 */
export async function connectBus(options: BusClientOptions, how: FirstConnect, setup?: (client: MqttClient) => void): Promise<MqttClient> {
  const client = busClient(options)
  setup?.(client)
  await firstConnect(client, how)
  return client
}
