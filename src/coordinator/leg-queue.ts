/**
 * The scheduler's pending legs of one priority: a FIFO with O(1) removal by
 * tombstone (a leg leaves the queue when it is assigned, cancelled or
 * dead-lettered), compacting itself when half dead.
 */
import type { TaskRecord } from '../contract/payloads/task.js'

export interface QueuedLeg {
  task: TaskRecord
  leg: number
  removed: boolean
}

/** A FIFO with O(1) removal by tombstone; compacts itself when half dead. */
export class LegQueue {
  private items: QueuedLeg[] = []
  private head = 0
  private dead = 0

  push(entry: QueuedLeg): void {
    this.items.push(entry)
  }

  remove(entry: QueuedLeg): void {
    entry.removed = true
    this.dead++
    while (this.head < this.items.length && this.items[this.head]?.removed === true) { this.head++; this.dead-- }
    if (this.dead > 1024 && this.dead * 2 > this.items.length - this.head) {
      this.items = this.items.slice(this.head).filter((e) => !e.removed)
      this.head = 0
      this.dead = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
  }

  *[Symbol.iterator](): Generator<QueuedLeg> {
    // Entries pushed during iteration are visited too; removed ones are skipped.
    for (let i = this.head; i < this.items.length; i++) {
      const entry = this.items[i]
      if (entry !== undefined && !entry.removed) yield entry
    }
  }
}
