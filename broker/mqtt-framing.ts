/**
 * Packet boundaries in an MQTT byte stream, without parsing packets: the
 * fixed header is one byte (type in the high nibble) and the remaining length
 * as a variable byte integer of one to four bytes [MQTT-2.2.3]. socket-writer
 * needs whole outgoing packets and their types; decoding is Aedes's job.
 */

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const

export interface FramedPacket {
  /** The whole packet, a view of a buffer nobody else holds. */
  readonly bytes: Buffer
  readonly type: number
  /** Where the variable header starts (after the fixed header). */
  readonly bodyOffset: number
}

/** Reassembles whole packets from the pieces a writer emits. */
export class PacketFramer {
  #partial: Buffer = Buffer.alloc(0)

  /** The packets completed by `chunks`; a trailing partial packet is kept for next time. Throws on a malformed length. */
  push(chunks: readonly Buffer[]): FramedPacket[] {
    // One copy, so that the packets may be held after the writer reuses its buffers.
    const buffer = Buffer.concat(this.#partial.length === 0 ? chunks : [this.#partial, ...chunks])
    const packets: FramedPacket[] = []
    let offset = 0
    while (buffer.length - offset >= 2) {
      let length = 0
      let index = offset + 1
      let complete = false
      for (let multiplier = 1; index < buffer.length && index - offset <= 4; multiplier *= 128) {
        const byte = buffer[index++]!
        length += (byte & 0x7f) * multiplier
        if ((byte & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete) {
        if (index - offset > 4) throw new Error('malformed remaining length in an outgoing MQTT packet')
        break
      }
      const end = index + length
      if (end > buffer.length) break
      packets.push({ bytes: buffer.subarray(offset, end), type: buffer[offset]! >> 4, bodyOffset: index - offset })
      offset = end
    }
    this.#partial = buffer.subarray(offset)
    return packets
  }
}

/** A packet whose fixed header announced more than the bound. */
export interface OversizedPacket {
  readonly type: number
  /** Fixed header plus remaining length: what the whole packet would take. */
  readonly announcedBytes: number
}

/**
 * Watches an incoming byte stream for a packet over `maxBytes`, from its
 * fixed header alone (issue #14, finding 7): Aedes's parser (mqtt-packet)
 * buffers a packet whole before anyone sees it, so four unauthenticated
 * CONNECTs announcing 250 MB each held 1.1 GB before the refusal. Keeps a
 * few bytes of state, never the packet: the header's bytes, then a count of
 * body bytes to skip. A malformed length is left for the parser to refuse.
 */
export class IncomingSizeGuard {
  readonly #maxBytes: number
  /** Bytes of the current fixed header seen so far (0: at a packet boundary). */
  #headerBytes = 0
  #type = 0
  #length = 0
  #multiplier = 1
  /** Body bytes of the current packet still to come. */
  #skip = 0

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  /** The first packet in `chunk` over the bound, or null. */
  check(chunk: Buffer): OversizedPacket | null {
    let offset = 0
    while (offset < chunk.length) {
      if (this.#skip > 0) {
        const taken = Math.min(this.#skip, chunk.length - offset)
        this.#skip -= taken
        offset += taken
        continue
      }
      const byte = chunk[offset++]!
      if (this.#headerBytes === 0) {
        this.#type = byte >> 4
        this.#length = 0
        this.#multiplier = 1
        this.#headerBytes = 1
        continue
      }
      this.#headerBytes++
      this.#length += (byte & 0x7f) * this.#multiplier
      this.#multiplier *= 128
      if ((byte & 0x80) !== 0 && this.#headerBytes < 5) continue
      // The header is complete (or malformed after 4 length bytes, [MQTT-2.2.3]: the parser's to refuse).
      const announcedBytes = this.#headerBytes + this.#length
      if (announcedBytes > this.#maxBytes) return { type: this.#type, announcedBytes }
      this.#skip = this.#length
      this.#headerBytes = 0
    }
    return null
  }
}
