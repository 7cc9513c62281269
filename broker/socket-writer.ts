/**
 * The write side of a broker connection: whole MQTT packets, one write per
 * tick, and responses held back until the client has answered us.
 *
 * Why: a client that publishes QoS 1 and receives on the same connection
 * (every agent, every request/response client) stalled 40–90 ms per round
 * trip on plain Aedes, against ~0.2 ms on Mosquitto. Measured on loopback:
 *
 *   client  PUBLISH(t)            ->
 *   Aedes                         <- PUBACK, then (later ticks) PUBLISH(t)
 *   client  PUBACK(fwd)           ->   (answering the forwarded PUBLISH)
 *   client  PUBLISH(next)  held by the client's Nagle: its PUBACK(fwd) is
 *           still unacknowledged, and the broker, having nothing to say,
 *           acknowledges it only when its delayed-ACK timer fires (40 ms).
 *
 * Mosquitto writes the forwarded PUBLISH first and its PUBACK only after the
 * client's PUBACK(fwd) has arrived (its socket keeps Nagle on, so the kernel
 * holds the PUBACK until the PUBLISH is acknowledged, which the client does
 * by piggybacking on its PUBACK(fwd)). The PUBACK segment then carries the TCP
 * ACK the client is waiting for, and its next PUBLISH leaves at once.
 *
 * We do the same in user space, with TCP_NODELAY on (so nothing else waits
 * on the kernel):
 *  1. Every PUBACK is held until the broker has routed that PUBLISH (the
 *     `published` hook calls `ackRouted`), so a copy forwarded to the
 *     publisher itself goes out first.
 *  2. After we send the client something it must answer (PUBLISH QoS > 0,
 *     PUBREL), responses (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK,
 *     PINGRESP) wait until bytes arrive from that client, so they carry the
 *     ACK for its answer.
 *  3. Nothing is held longer than `maxHoldMs`: a slow subscriber or a silent
 *     client costs at most that, never the 40 ms delayed ACK.
 * Responses keep their order ([MQTT-4.6.0-2]); forwarded PUBLISHes may
 * overtake a held PUBACK, as they do on Mosquitto. The outgoing byte stream
 * is framed so that each tick's packets leave in one write (mqtt-packet emits
 * a packet as several tiny writes).
 *
 * What this cannot fix: when a client's last segment is an answer to a
 * message that the broker will not follow with anything (the requester in an
 * agent round trip: it acks the report, then publishes the next task), only
 * the client can avoid Nagle: `client.stream.setNoDelay(true)`.
 */
import { Duplex } from 'node:stream'

const PUBLISH = 3
const PUBACK = 4
const PUBREL = 6
/** Server-to-client answers that a client may be waiting on. */
const RESPONSES = new Set([4, 5, 7, 9, 11, 13]) // PUBACK PUBREC PUBCOMP SUBACK UNSUBACK PINGRESP

export const DEFAULT_MAX_HOLD_MS = 20

export interface MqttConnectionOptions {
  /** Longest a response is held back, in ms. */
  readonly maxHoldMs?: number
}

interface HeldResponse {
  readonly bytes: Buffer
  /** PUBACK waiting for its PUBLISH to be routed; undefined for other responses. */
  readonly messageId: number | undefined
  routed: boolean
  readonly deadline: number
}

type WriteCallback = (error?: Error | null) => void

/**
 * Wraps a transport (TCP socket or WebSocket stream) for `aedes.handle`.
 * Reads pass through untouched; writes are framed, coalesced and ordered.
 */
export class MqttConnection extends Duplex {
  readonly transport: Duplex
  readonly #maxHoldMs: number
  #partial: Buffer = Buffer.alloc(0)
  #outbox: Buffer[] = []
  #flushScheduled = false
  #held: HeldResponse[] = []
  #awaitingReply = false
  #timer: NodeJS.Timeout | undefined
  #timerDeadline = 0
  #drainWaiters: WriteCallback[] = []

  constructor(transport: Duplex, options: MqttConnectionOptions = {}) {
    super({ allowHalfOpen: false })
    this.transport = transport
    this.#maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS
    transport.on('data', (chunk: Buffer) => {
      // The client spoke: whatever it answered is in this segment, so a
      // response sent now acknowledges it (point 2 in the header).
      this.#awaitingReply = false
      this.#releaseHeld(false)
      if (!this.push(chunk)) transport.pause()
    })
    let ended = false
    transport.on('end', () => {
      ended = true
      this.push(null)
    })
    transport.on('error', (error: Error) => this.destroy(error))
    transport.on('close', () => {
      // After a clean end, let the broker read what is still buffered (a
      // publisher may send many packets and DISCONNECT at once); it destroys
      // this stream when it sees 'end'. An abrupt close loses nothing more.
      if (!ended && !this.destroyed) this.destroy()
    })
    transport.on('drain', () => {
      const waiters = this.#drainWaiters
      this.#drainWaiters = []
      for (const callback of waiters) callback()
    })
  }

  /** The broker has routed the client's QoS 1 PUBLISH `messageId`: its PUBACK may go. */
  ackRouted(messageId: number): void {
    const entry = this.#held.find((h) => !h.routed && h.messageId === messageId)
    if (entry === undefined) return // already released by the deadline
    entry.routed = true
    this.#releaseHeld(false)
  }

  override _read(): void {
    this.transport.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.#frame(chunk)
    this.#afterWrite(callback)
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: WriteCallback): void {
    for (const { chunk } of chunks) this.#frame(chunk)
    this.#afterWrite(callback)
  }

  override _final(callback: WriteCallback): void {
    this.#releaseHeld(true)
    this.#flush()
    this.transport.end()
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#held = []
    this.#outbox = []
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const waiter of waiters) waiter()
    this.transport.destroy()
    callback(error)
  }

  #afterWrite(callback: WriteCallback): void {
    if (this.transport.writableNeedDrain) this.#drainWaiters.push(callback)
    else callback()
  }

  /** Splits the byte stream into whole packets: fixed header, then [MQTT-2.2.3] remaining length. */
  #frame(chunk: Buffer): void {
    const buffer = this.#partial.length === 0 ? chunk : Buffer.concat([this.#partial, chunk])
    let offset = 0
    while (buffer.length - offset >= 2) {
      let length = 0
      let multiplier = 1
      let index = offset + 1
      let complete = false
      for (let i = 0; i < 4 && index < buffer.length; i++) {
        const byte = buffer[index++] as number
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        if ((byte & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete) {
        if (index - offset > 4) {
          this.destroy(new Error('malformed remaining length in outgoing MQTT packet'))
          return
        }
        break
      }
      const end = index + length
      if (end > buffer.length) break
      this.#route(buffer.subarray(offset, end), index - offset)
      offset = end
    }
    this.#partial = offset === buffer.length ? Buffer.alloc(0) : Buffer.from(buffer.subarray(offset))
  }

  /** `bodyOffset`: where the variable header starts, after the fixed header. */
  #route(packet: Buffer, bodyOffset: number): void {
    const type = packet[0]! >> 4
    if (RESPONSES.has(type)) {
      const isPuback = type === PUBACK
      if (!isPuback && this.#held.length === 0 && !this.#awaitingReply) {
        this.#enqueue(packet)
        return
      }
      this.#held.push({
        bytes: Buffer.from(packet),
        messageId: isPuback ? packet.readUInt16BE(bodyOffset) : undefined,
        routed: !isPuback,
        deadline: Date.now() + this.#maxHoldMs,
      })
      this.#armTimer()
      return
    }
    if ((type === PUBLISH && (packet[0]! & 0x06) !== 0) || type === PUBREL) this.#awaitingReply = true
    this.#enqueue(packet)
  }

  #enqueue(packet: Buffer): void {
    this.#outbox.push(Buffer.from(packet))
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(() => this.#flush())
    }
  }

  /** Sends held responses from the head of the queue: routed ones unless we await the client, expired ones always. */
  #releaseHeld(all: boolean): void {
    const now = Date.now()
    while (this.#held.length > 0) {
      const head = this.#held[0]!
      const due = all || head.deadline <= now || (head.routed && !this.#awaitingReply)
      if (!due) break
      this.#held.shift()
      this.#enqueue(head.bytes)
    }
    this.#armTimer()
  }

  #armTimer(): void {
    const head = this.#held[0]
    if (this.#timer !== undefined) {
      if (head !== undefined && head.deadline === this.#timerDeadline) return
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (head === undefined) return
    this.#timerDeadline = head.deadline
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#releaseHeld(false)
    }, Math.max(0, head.deadline - Date.now()))
    this.#timer.unref()
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#outbox.length === 0) return
    const data = this.#outbox.length === 1 ? this.#outbox[0]! : Buffer.concat(this.#outbox)
    this.#outbox = []
    if (this.transport.destroyed || this.transport.writableEnded) return
    this.transport.write(data)
  }
}
