/**
 * How an instance opens its bus connection, shared by the agent SDK and
 * `trinity mcp` (both are instances in the sense of docs/topics.md):
 * a persistent session (clean: false) under the stable client id of its
 * instance id, so QoS 1 inbox frames assigned while it is away are queued by
 * the broker; a Last Will `{state: offline, session}` on its status topic,
 * retained, carrying the session number its birth will carry (the hub ignores
 * a Will older than the current birth); a reconnect every second.
 *
 * A broker that is not listening yet (the hub still starting) is waited for
 * up to `waitForBusMs`; any other failure (bad credentials, a bad URL) is
 * reported at once as TRINITY_ERR_BUS_UNAVAILABLE.
 */
import type { MqttClient } from 'mqtt'
import { topicsFor } from '../contract/topics.js'
import { ENV } from '../config/env.js'
import { TrinityError } from '../errors.js'
import { connectBus, type BusClientOptions } from './bus-client.js'
import { clientIds } from './client-ids.js'
import { busLogin } from './bus-login.js'

export interface InstanceConnectionOptions {
  readonly id: string
  /** Default: $TRINITY_MQTT_URL or mqtt://127.0.0.1:1883. */
  readonly url?: string | undefined
  readonly prefix?: string | undefined
  readonly username?: string | undefined
  readonly password?: string | undefined
  /** How long to keep trying while the broker refuses connections (default 30,000 ms). */
  readonly waitForBusMs?: number | undefined
}

/** The bus URL an instance uses when it is given none. */
function instanceBusUrl(url: string | undefined): string {
  return url ?? process.env[ENV.mqttUrl] ?? 'mqtt://127.0.0.1:1883'
}

/**
 * Connects as instance `options.id` with session number `session`. `setup`
 * runs before anything can arrive: a persistent session's queued frames
 * follow the CONNACK in the same read, and MQTT.js hands them on before the
 * connect resolves (see connectBus).
 */
export async function connectInstance(options: InstanceConnectionOptions, session: number, setup?: (client: MqttClient) => void): Promise<MqttClient> {
  const topics = topicsFor(options.prefix)
  const url = instanceBusUrl(options.url)
  const connectOptions: BusClientOptions = {
    url,
    clientId: clientIds.agent(topics.prefix, options.id),
    clean: false,
    reconnectPeriod: 1000,
    // The options' login, else the environment's (set by the supervisor).
    ...busLogin(options),
    will: { topic: topics.instanceStatus(options.id), payload: Buffer.from(JSON.stringify({ state: 'offline', session })), qos: 1, retain: true },
  }
  const deadline = Date.now() + (options.waitForBusMs ?? 30_000)
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectBus(connectOptions, 'first-error', setup)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ECONNREFUSED' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(500, 25 * 2 ** attempt)))
        continue
      }
      throw new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `${url}: ${(err as Error).message}`, { cause: err })
    }
  }
}

/**
 * Whether a status payload is this connection's own Last Will (offline, same
 * session): a restarted broker publishes the Will of every connection the old
 * one lost, possibly after the instance has reconnected and said online, and
 * the hub would count a live instance as gone. The instance answers it with a
 * fresh birth.
 */
export function isOwnWill(payload: Buffer, session: number): boolean {
  let status: { state?: unknown; session?: unknown }
  try { status = JSON.parse(payload.toString('utf8')) as typeof status } catch { return false }
  return status.state === 'offline' && status.session === session
}
