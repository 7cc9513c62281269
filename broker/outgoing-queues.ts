/**
 * Per-client queues of outgoing QoS > 0 messages, indexed both ways.
 *
 * Aedes's in-memory persistence keeps one array per client and scans it on
 * every delivery (`outgoingUpdate`) and every PUBACK (`outgoingClearMessageId`).
 * A subscriber with a deep queue (the coordinator during a burst of 20,000
 * submissions) made that quadratic. Same semantics, O(1): a queue is a Map in
 * arrival order keyed on (brokerId, brokerCounter), plus packet id → key.
 */
import { Readable } from 'node:stream'

export interface QueuedPacket {
  brokerId?: string
  brokerCounter?: number
  messageId?: number
  [key: string]: unknown
}

interface Queue {
  readonly packets: Map<string, QueuedPacket>
  readonly byMessageId: Map<number, string>
}

const keyOf = (packet: QueuedPacket): string => `${packet.brokerId ?? ''}:${packet.brokerCounter ?? 0}`

export class OutgoingQueues {
  private readonly queues = new Map<string, Queue>()

  constructor(private readonly copy: (packet: QueuedPacket) => QueuedPacket) {}

  enqueue(clientId: string, packet: QueuedPacket): void {
    const queue = this.queue(clientId)
    const key = keyOf(packet)
    if (queue.packets.has(key)) return
    const stored = this.copy(packet)
    queue.packets.set(key, stored)
    if (stored.messageId !== undefined) queue.byMessageId.set(stored.messageId, key)
  }

  /** Records the packet id a delivery used. Throws 'no such packet' as Aedes expects. */
  update(clientId: string, packet: QueuedPacket): void {
    const queue = this.queue(clientId)
    const key = keyOf(packet)
    const stored = queue.packets.get(key)
    if (stored !== undefined) {
      if (stored.messageId !== undefined && queue.byMessageId.get(stored.messageId) === key) queue.byMessageId.delete(stored.messageId)
      if (packet.messageId !== undefined) {
        stored.messageId = packet.messageId
        queue.byMessageId.set(packet.messageId, key)
      }
      return
    }
    // A packet from another broker that reuses a packet id replaces it (as aedes-persistence does).
    const otherKey = packet.messageId === undefined ? undefined : queue.byMessageId.get(packet.messageId)
    const other = otherKey === undefined ? undefined : queue.packets.get(otherKey)
    if (otherKey !== undefined && other !== undefined && other.brokerId !== packet.brokerId && packet.messageId !== undefined) {
      queue.packets.delete(otherKey)
      queue.packets.set(key, packet)
      queue.byMessageId.set(packet.messageId, key)
      return
    }
    throw new Error('no such packet')
  }

  /** Removes and returns the packet acknowledged under this packet id. */
  clear(clientId: string, messageId: number | undefined): QueuedPacket | undefined {
    if (messageId === undefined) return undefined
    const queue = this.queues.get(clientId)
    const key = queue?.byMessageId.get(messageId)
    if (queue === undefined || key === undefined) return undefined
    const stored = queue.packets.get(key)
    queue.packets.delete(key)
    queue.byMessageId.delete(messageId)
    if (queue.packets.size === 0) this.queues.delete(clientId)
    return stored
  }

  stream(clientId: string): Readable {
    return Readable.from([...(this.queues.get(clientId)?.packets.values() ?? [])])
  }

  private queue(clientId: string): Queue {
    let queue = this.queues.get(clientId)
    if (queue === undefined) {
      queue = { packets: new Map(), byMessageId: new Map() }
      this.queues.set(clientId, queue)
    }
    return queue
  }
}
