/**
 * The write side of a broker connection: whole MQTT packets, one write per
 * turn of the event loop, and the send discipline that keeps QoS 1/2 round
 * trips sub-millisecond for clients with default (Nagle) sockets.
 *
 * The problem, measured on loopback: a client that publishes QoS 1 and
 * receives on the same connection (every agent, every request/response
 * client) stalled 40–90 ms per round trip on plain Aedes, against ~0.2 ms on
 * Mosquitto:
 *
 *   client  PUBLISH(t)            ->
 *   Aedes                         <- PUBACK, then (later ticks) PUBLISH(t)
 *   client  PUBACK(fwd)           ->   (answering the forwarded PUBLISH)
 *   client  PUBLISH(next)  held by the client's Nagle: its PUBACK(fwd) is
 *           still unacknowledged, and the broker, having nothing to say,
 *           acknowledges it only when its delayed-ACK timer fires (40 ms).
 *
 * A client never stalls if every segment it sends is answered by a data
 * segment from us that leaves after it (and so carries its TCP ACK).
 * Mosquitto gets that from Nagle on its own socket: it writes the forwarded
 * PUBLISH first, and the kernel holds the PUBACK until the client has
 * acknowledged the PUBLISH, which it does by piggybacking on PUBACK(fwd).
 * MQTT.js answers packets one per tick, each answer its own segment, so this
 * lockstep (one segment in flight each way) is also what QoS 2 needs.
 *
 * We keep TCP_NODELAY on and do the same in user space, where "acknowledged"
 * means "the client has sent us something since":
 *  1. A PUBACK waits until the broker has routed its PUBLISH (the `published`
 *     hook calls `ackRouted`), so a copy forwarded to the publisher itself
 *     goes out first. PUBACKs keep their order [MQTT-4.6.0-2].
 *  2. Once we have sent a packet the client must answer (PUBLISH QoS > 0,
 *     PUBREC, PUBREL), everything after it waits, in order, until bytes
 *     arrive from the client; then it all leaves in one write.
 *  3. Nothing waits longer than `maxHoldMs` for a client's answer (a client
 *     that answers late): at worst we fall back to plain Aedes's behaviour,
 *     never to a longer wait. A PUBACK whose PUBLISH is not yet routed is the
 *     exception: it waits for `ackRouted` however long that takes, since
 *     routing includes storing the message (the journal of a persistent
 *     session, the hub's task store through its in-process coordinator and
 *     its group commit), and a PUBACK is the promise that it is stored
 *     (issue #12). Routing never waits for a client's socket (slow consumers
 *     below), so it always ends. A connection that closes first never sends it:
 *     the client publishes again.
 * Packets are framed whole (mqtt-packet emits one as several tiny writes) and
 * what is ready in one turn of the event loop leaves in one write at
 * setImmediate: Aedes delivers each message in its own setImmediate, and with
 * TCP_NODELAY a write per message costs a segment per message (QoS 0 fan-out
 * throughput fell by about 40% before this).
 *
 * What this cannot fix: a client whose last segment is an answer we have no
 * reason to follow (the requester in an agent round trip acks the report,
 * then publishes the next task at once). That client must call
 * `client.stream.setNoDelay(true)`; Trinity's own clients do.
 *
 * Slow consumers (issue #14): Aedes waits for a client's 'drain' before it
 * finishes a delivery, and an unfinished delivery holds one of the broker's
 * shared publish slots, so a client that stops reading froze delivery to
 * every client until Aedes's drainTimeout (60 s) cut it. So we never make
 * Aedes wait: every write is accepted at once, and what the transport cannot
 * take yet is counted against `maxBufferedBytes` (held packets, the outbox,
 * and the transport's own unsent bytes; the kernel's socket buffers come on
 * top), beyond the largest single packet among them. A client over it is
 * disconnected (`onOverflow` says who and why):
 * one client's backlog costs that client, bounded, and nobody else a wait.
 */
import { Duplex } from 'node:stream'
import { IncomingSizeGuard, PacketFramer, PacketType, type FramedPacket, type OversizedPacket } from './mqtt-framing.js'

const DEFAULT_MAX_HOLD_MS = 10

export interface MqttConnectionOptions {
  /** Longest a packet is held back, in ms. */
  readonly maxHoldMs?: number
  /** Unsent bytes over which the client is a slow consumer and is disconnected; default no bound. */
  readonly maxBufferedBytes?: number
  /** Called once, just before a slow consumer is disconnected. */
  readonly onOverflow?: (overflow: BufferOverflow) => void
  /** Largest incoming packet, fixed header included; a larger one closes the connection as its header arrives. Default no bound. */
  readonly maxIncomingPacket?: number
  /** Called once, just before a connection is closed for an oversized packet. */
  readonly onOversized?: (packet: OversizedPacket) => void
}

/** Why a connection was cut: what was queued for it, and the delivery that went over the bound. */
export interface BufferOverflow {
  readonly bufferedBytes: number
  readonly maxBufferedBytes: number
  /** The topic of the PUBLISH that went over, if it was one. */
  readonly topic: string | undefined
}

interface Held {
  readonly packet: FramedPacket
  readonly deadline: number
}

interface PendingPuback extends Held {
  readonly messageId: number
  routed: boolean
}

type WriteCallback = (error?: Error | null) => void

/** [MQTT-4.3]: the packets a client must answer. */
function expectsAnswer({ type, bytes }: FramedPacket): boolean {
  if (type === PacketType.PUBLISH) return (bytes[0]! & 0x06) !== 0 // QoS bits
  return type === PacketType.PUBREC || type === PacketType.PUBREL
}

/** [MQTT-3.3.2.1]: a PUBLISH's variable header opens with its topic name. */
function publishTopic({ bytes, bodyOffset }: FramedPacket): string {
  const length = bytes.readUInt16BE(bodyOffset)
  return bytes.toString('utf8', bodyOffset + 2, bodyOffset + 2 + length)
}

/**
 * Wraps a transport (TCP socket or WebSocket stream) for `aedes.handle`.
 * Reads pass through untouched; writes are framed, ordered and coalesced.
 */
export class MqttConnection extends Duplex {
  readonly transport: Duplex
  readonly #maxHoldMs: number
  readonly #maxBufferedBytes: number
  readonly #onOverflow: ((overflow: BufferOverflow) => void) | undefined
  /** Bytes accepted from the broker and not yet handed to the transport (pubacks, held, outbox). */
  #unsentBytes = 0
  /** The largest packet queued since nothing was left to send: the bound is over and above it. */
  #largestQueued = 0
  readonly #framer = new PacketFramer()
  /** PUBACKs waiting for their PUBLISH to be routed (point 1). */
  #pubacks: PendingPuback[] = []
  /** Packets waiting for the client to answer what is in flight (point 2). */
  #held: Held[] = []
  #awaitingAnswer = false
  #outbox: Buffer[] = []
  #flushScheduled = false
  #timer: NodeJS.Timeout | undefined
  #timerDeadline = 0

  constructor(transport: Duplex, options: MqttConnectionOptions = {}) {
    super({ allowHalfOpen: false })
    this.transport = transport
    this.#maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS
    this.#maxBufferedBytes = options.maxBufferedBytes ?? Infinity
    this.#onOverflow = options.onOverflow
    const guard = options.maxIncomingPacket === undefined ? undefined : new IncomingSizeGuard(options.maxIncomingPacket)
    transport.on('data', (chunk: Buffer) => {
      if (this.destroyed) return
      // Before the parser sees it: it would buffer the packet whole (mqtt-framing.ts).
      const oversized = guard?.check(chunk) ?? null
      if (oversized !== null) {
        options.onOversized?.(oversized)
        this.destroy()
        return
      }
      // The client spoke, so it has our last segment: the next may go, and
      // carries the ACK for this one.
      this.#releaseHeld()
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
  }

  /** What is queued for the client and not yet in the kernel: ours and the transport's. */
  get bufferedBytes(): number {
    return this.#unsentBytes + this.transport.writableLength
  }

  /** The broker has routed the client's QoS 1 PUBLISH `messageId`: its PUBACK may go. */
  ackRouted(messageId: number): void {
    const entry = this.#pubacks.find((p) => !p.routed && p.messageId === messageId)
    if (entry === undefined) return // the connection closed before it was routed
    entry.routed = true
    this.#releasePubacks(false)
  }

  override _read(): void {
    this.transport.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.#accept([chunk], callback)
  }

  /** mqtt-packet corks the stream for each packet, so a tick's packets arrive here together. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: WriteCallback): void {
    this.#accept(chunks.map(({ chunk }) => chunk), callback)
  }

  override _final(callback: WriteCallback): void {
    this.#sendEverything()
    this.transport.end()
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Send what is queued first: Aedes writes a refusing CONNACK and destroys
    // the connection right away [MQTT-3.2.2-5], and the client must see it.
    this.#sendEverything()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.transport.destroy()
    callback(error)
  }

  #accept(chunks: Buffer[], callback: WriteCallback): void {
    let packets: FramedPacket[]
    try {
      packets = this.#framer.push(chunks)
    } catch (error) {
      callback(error instanceof Error ? error : new Error(String(error)))
      return
    }
    const deadline = Date.now() + this.#maxHoldMs
    if (this.bufferedBytes === 0) this.#largestQueued = 0
    for (const packet of packets) {
      this.#unsentBytes += packet.bytes.length
      this.#largestQueued = Math.max(this.#largestQueued, packet.bytes.length)
      if (packet.type === PacketType.PUBACK) {
        // No deadline until routed (point 3): only then is the message stored.
        this.#pubacks.push({ packet, deadline: Infinity, messageId: packet.bytes.readUInt16BE(packet.bodyOffset), routed: false })
      } else {
        this.#send({ packet, deadline })
      }
    }
    this.#armTimer()
    // Never the transport's backpressure: Aedes would hold the delivery, and with it everyone's.
    callback()
    // One message larger than the bound (the broker does not bound packet sizes) is not a backlog:
    // the bound is what is queued behind the largest one.
    const bufferedBytes = this.bufferedBytes
    if (bufferedBytes - this.#largestQueued > this.#maxBufferedBytes && !this.destroyed) {
      const last = packets.findLast((p) => p.type === PacketType.PUBLISH)
      this.#onOverflow?.({ bufferedBytes, maxBufferedBytes: this.#maxBufferedBytes, topic: last === undefined ? undefined : publishTopic(last) })
      this.destroy()
    }
  }

  /** Point 2: in order behind anything held, and not while an answer is awaited. */
  #send(entry: Held): void {
    if (this.#awaitingAnswer || this.#held.length > 0) {
      this.#held.push(entry)
      return
    }
    this.#enqueue(entry.packet)
  }

  #enqueue(packet: FramedPacket): void {
    if (expectsAnswer(packet)) this.#awaitingAnswer = true
    this.#outbox.push(packet.bytes)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(() => this.#flush())
    }
  }

  /**
   * Point 1: routed PUBACKs from the head of the queue, in order. `closing`:
   * the connection ends, and what is not routed never goes (its message is
   * not stored yet; the client publishes it again).
   */
  #releasePubacks(closing: boolean): void {
    while (this.#pubacks.length > 0) {
      const head = this.#pubacks[0]!
      if (!head.routed && !closing) break
      this.#pubacks.shift()
      // From now on held like any response (point 2), with its own deadline.
      if (head.routed) this.#send({ packet: head.packet, deadline: Date.now() + this.#maxHoldMs })
    }
    this.#armTimer()
  }

  /** Point 2: the client answered (or took too long): what was held leaves together. */
  #releaseHeld(): void {
    this.#awaitingAnswer = false
    if (this.#held.length === 0) return
    const held = this.#held
    this.#held = []
    for (const entry of held) this.#enqueue(entry.packet)
    this.#armTimer()
  }

  #sendEverything(): void {
    this.#releasePubacks(true)
    this.#releaseHeld()
    this.#flush()
  }

  #armTimer(): void {
    // Called for every write the broker makes: nothing allocated on the way (issue #12).
    const next = this.#held[0]?.deadline
    if (this.#timer !== undefined) {
      if (next === this.#timerDeadline) return
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (next === undefined) return
    this.#timerDeadline = next
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      const now = Date.now()
      if ((this.#held[0]?.deadline ?? Infinity) <= now) this.#releaseHeld()
      this.#releasePubacks(false)
    }, Math.max(0, next - Date.now()))
    this.#timer.unref()
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#outbox.length === 0) return
    const data = this.#outbox.length === 1 ? this.#outbox[0]! : Buffer.concat(this.#outbox)
    this.#outbox = []
    this.#unsentBytes -= data.length
    if (this.transport.destroyed || this.transport.writableEnded) return
    this.transport.write(data)
  }
}
