/**
 * Per-client queues of outgoing QoS > 0 messages, indexed both ways.
 *
 * Aedes's in-memory persistence keeps one array per client and scans it on
 * every delivery (`outgoingUpdate`) and every PUBACK (`outgoingClearMessageId`).
 * A subscriber with a deep queue (the coordinator during a burst of 20,000
 * submissions) made that quadratic. Same semantics, O(1): a queue is a Map in
 * arrival order keyed on (brokerId, brokerCounter), plus packet id → key.
 *
 * Bounded for absent sessions (issue #14: an abandoned persistent session
 * kept every QoS 1 message for ever, 136 MB of journal per 5,000 tasks,
 * reloaded at each start): while its client is away, a queue keeps at most
 * `maxMessages`, none older than `maxAgeMs`; the oldest go first and
 * `onDrop` says which. A connected client's queue (in flight, or the
 * coordinator's during a burst) is never cut; what aged while it was away
 * is dropped when it comes back, before the queue is replayed. The hub's own
 * sessions (`exempt`: the coordinator's holds acknowledged submissions) are
 * never cut.
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
  /** When each packet was queued, in the same (arrival) order. */
  readonly queuedAt: Map<string, number>
}

export interface SessionBounds {
  readonly maxMessages: number
  readonly maxAgeMs: number
  /** Whether the client is away (not connected): only then is its queue cut on arrival. */
  readonly isAbsent: (clientId: string) => boolean
  /** Sessions never cut (the hub's own: what they hold is acknowledged work). */
  readonly exempt: (clientId: string) => boolean
  readonly onDrop: (clientId: string, dropped: readonly QueuedPacket[], why: 'count' | 'age') => void
  readonly now?: () => number
}

const keyOf = (packet: QueuedPacket): string => `${packet.brokerId ?? ''}:${packet.brokerCounter ?? 0}`

export class OutgoingQueues {
  private readonly queues = new Map<string, Queue>()

  constructor(private readonly copy: (packet: QueuedPacket) => QueuedPacket, private readonly bounds?: SessionBounds) {}

  /** `queuedAt`: when it was first queued (a journal replayed at start knows); default now. */
  enqueue(clientId: string, packet: QueuedPacket, queuedAt?: number): void {
    const queue = this.queue(clientId)
    const key = keyOf(packet)
    if (queue.packets.has(key)) return
    const stored = this.copy(packet)
    queue.packets.set(key, stored)
    queue.queuedAt.set(key, queuedAt ?? this.bounds?.now?.() ?? Date.now())
    if (stored.messageId !== undefined) queue.byMessageId.set(stored.messageId, key)
    if (this.bounds !== undefined && this.bounds.isAbsent(clientId) && !this.bounds.exempt(clientId)) {
      this.trim(clientId, queue, 'age')
      this.trim(clientId, queue, 'count')
    }
  }

  /** Drops from the head: what is over the count bound, or older than the age bound. */
  private trim(clientId: string, queue: Queue, why: 'count' | 'age'): void {
    const bounds = this.bounds
    if (bounds === undefined || bounds.exempt(clientId)) return
    const oldest = (bounds.now?.() ?? Date.now()) - bounds.maxAgeMs
    const dropped: QueuedPacket[] = []
    for (const [key, at] of queue.queuedAt) {
      if (why === 'count' ? queue.packets.size <= bounds.maxMessages : at >= oldest) break
      const packet = queue.packets.get(key)
      queue.packets.delete(key)
      queue.queuedAt.delete(key)
      if (packet?.messageId !== undefined && queue.byMessageId.get(packet.messageId) === key) queue.byMessageId.delete(packet.messageId)
      if (packet !== undefined) dropped.push(packet)
    }
    if (queue.packets.size === 0) this.queues.delete(clientId)
    if (dropped.length > 0) bounds.onDrop(clientId, dropped, why)
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
      const at = queue.queuedAt.get(otherKey) ?? Date.now()
      queue.packets.delete(otherKey)
      queue.queuedAt.delete(otherKey)
      queue.packets.set(key, packet)
      queue.queuedAt.set(key, at)
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
    queue.queuedAt.delete(key)
    queue.byMessageId.delete(messageId)
    if (queue.packets.size === 0) this.queues.delete(clientId)
    return stored
  }

  /** Removes and returns a client's whole queue, in order (a session handed over to an in-process consumer). */
  take(clientId: string): QueuedPacket[] {
    const packets = [...(this.queues.get(clientId)?.packets.values() ?? [])]
    this.queues.delete(clientId)
    return packets
  }

  /** The queue to replay to a client that (re)connects; what aged while it was away goes first. */
  stream(clientId: string): Readable {
    const queue = this.queues.get(clientId)
    if (queue !== undefined) this.trim(clientId, queue, 'age')
    return Readable.from([...(this.queues.get(clientId)?.packets.values() ?? [])])
  }

  private queue(clientId: string): Queue {
    let queue = this.queues.get(clientId)
    if (queue === undefined) {
      queue = { packets: new Map(), byMessageId: new Map(), queuedAt: new Map() }
      this.queues.set(clientId, queue)
    }
    return queue
  }
}
