/**
 * The page's bus connection: MQTT over WebSocket to the hub that served the
 * page (`/mqtt`, same origin), a clean session, and a subscription to what
 * the dashboard shows. MQTT.js reconnects by itself; on every (re)connect the
 * page subscribes again, and the broker replays the retained state.
 */
import mqtt from 'mqtt-browser'
import type { ParsedTopic, TopicContract } from '../../src/contract/topics.js'

export interface BusHandlers {
  message(topic: ParsedTopic, payload: unknown): void
  /** A payload that is not JSON (the coordinator rejects those too). */
  garbage(topic: string, reason: string): void
  connection(connected: boolean): void
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

export function connectBus(topics: TopicContract, handlers: BusHandlers): { close(): void } {
  const decoder = new TextDecoder()
  const client = mqtt.connect(busUrl(window.location), {
    clientId: `dashboard-${Math.random().toString(36).slice(2, 10)}`,
    clean: true,
    keepalive: 10,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    resubscribe: false,
  })
  client.on('connect', () => {
    client.subscribe(dashboardFilters(topics), { qos: 0 })
    handlers.connection(true)
  })
  client.on('close', () => handlers.connection(false))
  client.on('offline', () => handlers.connection(false))
  client.on('error', () => handlers.connection(client.connected))
  client.on('message', (name, bytes) => {
    const topic = topics.parse(name)
    if (topic === undefined) return
    const text = decoder.decode(bytes)
    if (text === '') return handlers.message(topic, null)
    let payload: unknown
    try {
      payload = JSON.parse(text)
    } catch {
      return handlers.garbage(name, 'payload is not JSON')
    }
    handlers.message(topic, payload)
  })
  return { close: () => client.end(true) }
}
