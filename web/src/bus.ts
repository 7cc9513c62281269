/**
 * The page's bus connection: MQTT over WebSocket to the hub that served the
 * page (`/mqtt`, same origin), a clean session, and a subscription to what
 * the dashboard shows. MQTT.js reconnects by itself; on every (re)connect the
 * page subscribes again, and the broker replays the retained state.
 */
import mqtt from 'mqtt-browser'
import { decode } from '../../src/contract/payloads/validate.js'
import type { ParsedTopic, TopicContract } from '../../src/contract/topics.js'
import { isShown, SHOWN } from './payloads.js'

export interface BusHandlers {
  /** `payload`: decoded with the topic kind's schema (payloads.ts), or null for an empty (cleared retained) payload. */
  message(topic: ParsedTopic, payload: unknown): void
  /** A payload that is not JSON or does not match its schema, with the reason (`field: what was expected`). */
  garbage(topic: string, reason: string): void
  /** `reason`: why the connection dropped, when MQTT.js or the broker said (e.g. `Keepalive timeout`). */
  connection(connected: boolean, reason?: string): void
}

/**
 * The topics the dashboard renders; retained ones arrive at once on subscribe.
 * Health before status: the retained verdict is what an instance shows, so it
 * should be there before an old birth is replayed.
 */
function dashboardFilters(t: TopicContract): string[] {
  return [
    t.anyHealth, t.anyInstanceStatus, t.anyTaskEvent, t.anyMessage, t.hubStats, t.hubErrors,
    t.supervisorStatus, t.bridgeStatus, t.anyComputerStatus, t.anyComputerMessage,
  ]
}

function busUrl(location: Location): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/mqtt`
}

/** `login`: the read-only bus user GET /auth/bus handed the page; null when the broker needs none. */
export function connectBus(topics: TopicContract, login: { username: string; password: string } | null, handlers: BusHandlers): { close(): void } {
  const client = mqtt.connect(busUrl(window.location), {
    ...(login === null ? {} : { username: login.username, password: login.password }),
    clientId: `dashboard-${Math.random().toString(36).slice(2, 10)}`,
    clean: true,
    // A PINGREQ after 60 s of silence from us (MQTT.js's and mosquitto_sub's default); the
    // broker drops us after 90 s without one. A page far behind a burst runs its timers late.
    keepalive: 60,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    resubscribe: false,
  })
  // Liveness. MQTT.js believes only a PINGRESP, and a PINGRESP waits behind every message the
  // broker queued before it: in a burst a page reads seconds behind its socket, and MQTT.js
  // closed a healthy connection ("Keepalive timeout"), losing the QoS 0 events of the gap (seen
  // at 1,000 events/s in the suite on a busy machine). Any packet read after our PINGREQ shows
  // the broker is there, so it counts as the answer. A half-open connection is still noticed,
  // once the backlog ahead of it has been read.
  let pingOutstanding = false
  client.on('packetsend', (packet) => { if (packet.cmd === 'pingreq') pingOutstanding = true })
  client.on('packetreceive', () => {
    if (!pingOutstanding) return
    pingOutstanding = false
    client.reschedulePing(true)
  })
  client.on('connect', () => {
    client.subscribe(dashboardFilters(topics), { qos: 0 })
    handlers.connection(true)
  })
  // MQTT.js emits an 'error' with the cause (e.g. `Keepalive timeout`) before 'close'.
  let reason: string | undefined
  client.on('error', (err) => { reason = err.message; handlers.connection(client.connected, reason) })
  client.on('close', () => { handlers.connection(false, reason); reason = undefined })
  client.on('offline', () => handlers.connection(false, reason))
  client.on('message', (name, bytes) => {
    const topic = topics.parse(name)
    if (topic === undefined || !isShown(topic.kind)) return
    if (bytes.length === 0) return handlers.message(topic, null)
    const decoded = decode(SHOWN[topic.kind], bytes)
    if (!decoded.ok) return handlers.garbage(name, decoded.reason)
    handlers.message(topic, decoded.value)
  })
  return { close: () => client.end(true) }
}
