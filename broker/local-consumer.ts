/**
 * A consumer inside the broker's process: it subscribes at the broker level
 * (Aedes `subscribe`, no socket, no MQTT encoding, no session journal) and
 * publishes with `publish` (no client, so no ACL: the process is the broker's
 * own). The embedded hub's coordinator reads the bus this way (issue #12):
 * as an MQTT client of its own broker, every message to it crossed TCP twice,
 * was encoded and parsed twice and was journaled once by the broker for its
 * persistent session before the task store wrote it again.
 *
 * What a persistent session gave it is kept:
 * - Nothing is acknowledged before it is handled: a publisher's PUBACK
 *   leaves only after every broker-level listener has called back (Aedes's
 *   publish pipeline), and this one calls back when the handler acks, so a
 *   QoS 1 message the coordinator stores is on disk before its PUBACK.
 * - Nothing published before the consumer attaches is lost: the subscription
 *   exists before the broker listens, clients are let in only once it has
 *   attached (embedded.ts), and what the broker publishes itself before then
 *   waits, in order.
 * - Retained messages on its filters come first at `attach`, as a broker
 *   sends them to a client that subscribes.
 * - What an older hub left queued in a persistent session of its own (the
 *   coordinator's client id, `adoptSession`) is handed over once, in order,
 *   before anything newer.
 *
 * The broker knows nothing of who consumes: filters and a handler.
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { Readable } from 'node:stream'

export interface LocalPublishOptions {
  readonly qos: 0 | 1
  readonly retain: boolean
}

/**
 * Handles one message; `ack` releases it (the publisher's PUBACK waits for
 * it), exactly once, now or later: a consumer that stores what it reads may
 * ack once that is on disk (the coordinator's group commit).
 */
export type LocalHandler = (topic: string, payload: Buffer, ack: () => void) => void

/** The broker's in-process door, for a consumer that attaches once. */
export interface LocalBus {
  /** Starts delivery: retained messages on the filters, then what waited, then live traffic. */
  attach(onMessage: LocalHandler): Promise<void>
  /** Stops delivery; what arrives after waits again until the broker closes. */
  detach(): void
  publish(topic: string, payload: string | Buffer, options: LocalPublishOptions, done?: (error?: Error) => void): void
}

interface Waiting {
  readonly packet: AedesPublishPacket
  readonly ack: () => void
}

const noop = (): void => undefined

function payloadOf(packet: { payload: Buffer | string }): Buffer {
  return Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
}

/** What the consumer takes over from a persistent session an older hub left behind. */
export interface AdoptedSession {
  readonly packets: readonly { topic: string; payload: Buffer | string }[]
  /** Called once every packet is acked by the consumer: their journal rows may go. */
  readonly handled: () => void
}

/** Subscribes now (call before the broker listens); delivery starts at `attach`. */
export interface LocalBusOptions {
  readonly filters: readonly string[]
  /** The broker's retained messages on these filters (its persistence's retained stream). */
  readonly retained: (filters: string[]) => Readable
  readonly adopted?: AdoptedSession | undefined
  /** A handler that threw (a bug of the consumer's: bad input is its to reject); the message is acknowledged anyway. */
  readonly onError: (error: unknown, topic: string) => void
}

export async function createLocalBus(aedes: Aedes, options: LocalBusOptions): Promise<LocalBus> {
  const { filters, retained, adopted } = options
  const handle = (onMessage: LocalHandler, topic: string, payload: Buffer, ack: () => void = noop): void => {
    let acked = false
    const once = (): void => { if (!acked) { acked = true; ack() } }
    // A throw must not leave the message unacknowledged or stop the ones behind it.
    try {
      onMessage(topic, payload, once)
    } catch (error) {
      options.onError(error, topic)
      once()
    }
  }
  let handler: LocalHandler | undefined
  const waiting: Waiting[] = []
  /**
   * The retained messages delivered at attach, by topic: a copy of one (or an
   * older message on its topic) that reaches the subscription afterwards is
   * not news. Aedes stores a retained message before it routes it, so a
   * publish racing the attach shows up in both.
   */
  const replayed = new Map<string, { brokerId: string; counter: number }>()
  const isReplayed = (packet: AedesPublishPacket): boolean => {
    const seen = replayed.get(packet.topic)
    if (seen === undefined) return false
    if (seen.brokerId === packet.brokerId && packet.brokerCounter <= seen.counter) return true
    replayed.delete(packet.topic)
    return false
  }
  const deliver = (packet: AedesPublishPacket, ack: () => void): void => {
    if (handler === undefined) return void waiting.push({ packet, ack })
    if (isReplayed(packet)) return ack()
    handle(handler, packet.topic, payloadOf(packet), ack)
  }
  await Promise.all(filters.map((filter) => new Promise<void>((resolve) => aedes.subscribe(filter, deliver, resolve))))

  return {
    async attach(onMessage) {
      for await (const packet of retained([...filters]) as AsyncIterable<AedesPublishPacket>) {
        replayed.set(packet.topic, { brokerId: packet.brokerId, counter: packet.brokerCounter })
        handle(onMessage, packet.topic, payloadOf(packet))
      }
      if (adopted !== undefined) {
        // Queued by an earlier process: older than any retained copy of its topic. Their journal rows go
        // once the consumer has acked every one (it may ack after its own commit), not before.
        const handover = adopted.packets.filter((packet) => !replayed.has(packet.topic))
        let pending = handover.length
        const acked = (): void => { if (--pending === 0) adopted.handled() }
        if (pending === 0) adopted.handled()
        for (const packet of handover) handle(onMessage, packet.topic, payloadOf(packet), acked)
      }
      for (const { packet, ack } of waiting.splice(0)) {
        if (isReplayed(packet)) ack()
        else handle(onMessage, packet.topic, payloadOf(packet), ack)
      }
      handler = onMessage
    },
    detach() {
      handler = undefined
    },
    publish(topic, payload, options, done) {
      aedes.publish({
        cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
        qos: options.qos, retain: options.retain, dup: false,
      }, (error) => done?.(error ?? undefined))
    },
  }
}
