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
