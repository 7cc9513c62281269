/**
 * Export and import of a task store (issue #13): the upgrade path from a
 * single SQLite hub to a cluster on JetStream KV, and a backup besides.
 * `trinity store export` writes what the configured store holds as JSON
 * lines; `trinity store import FILE` writes them into the configured store,
 * which must be empty (an import is a move, not a merge) and, for nats-kv,
 * not in use by a leading hub.
 *
 * The file: a header line `{"kind":"trinity-store","version":1}`, then one
 * line per birth, per task (oldest change first, so listings keep their
 * order) and per message (oldest first). Through the TaskStore interface
 * only, so it works between any two backends.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { once } from 'node:events'
import type { TaskRecord } from '../contract/payloads/task.js'
import type { Message } from '../contract/payloads/message.js'
import { summarizeTask } from '../contract/task-summary.js'
import { TrinityError } from '../errors.js'
import type { RememberedBirth, TaskStore } from './task-store.js'

const HEADER = { kind: 'trinity-store', version: 1 } as const

type Line =
  | typeof HEADER
  | { kind: 'birth'; birth: RememberedBirth }
  | { kind: 'task'; record: TaskRecord }
  | { kind: 'message'; message: Message }

export interface TransferCounts {
  tasks: number
  messages: number
  births: number
}

function totalTasks(store: TaskStore): number {
  let n = 0
  for (const count of store.countTasksByState().values()) n += count
  return n
}

/** Writes every birth, task and message of `store` to `file` ('-': stdout). */
export async function exportStore(store: TaskStore, file: string): Promise<TransferCounts> {
  const out = file === '-' ? process.stdout : createWriteStream(file)
  const write = async (line: Line): Promise<void> => {
    if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, 'drain')
  }
  await write(HEADER)
  const births = store.births()
  for (const birth of births) await write({ kind: 'birth', birth })
  const tasks = store.listTasks({ limit: Math.max(1, totalTasks(store)) }).reverse()
  for (const record of tasks) await write({ kind: 'task', record })
  const messages = store.recentMessages(Math.max(1, store.messageCount()))
  for (const message of messages) await write({ kind: 'message', message })
  if (out !== process.stdout) {
    out.end()
    await once(out, 'finish')
  }
  return { tasks: tasks.length, messages: messages.length, births: births.length }
}

/** Reads `file` into `store`, which must be empty; resolves once the store vouches for every write. */
export async function importStore(store: TaskStore, file: string, options: { maxMessages: number }): Promise<TransferCounts> {
  const held = totalTasks(store) + store.messageCount() + store.births().length
  if (held > 0) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `the configured store is not empty (${totalTasks(store)} tasks, ${store.messageCount()} messages, ${store.births().length} births): an import goes into an empty store only`)
  const counts: TransferCounts = { tasks: 0, messages: 0, births: 0 }
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity })
  let number = 0
  for await (const text of lines) {
    number++
    if (text.trim() === '') continue
    let line: Line
    try {
      line = JSON.parse(text) as Line
    } catch (err) {
      throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `${file}:${number}: not JSON (${(err as Error).message})`)
    }
    if (number === 1) {
      if (line.kind !== HEADER.kind || (line).version !== HEADER.version) {
        throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `${file}:1: expected the header ${JSON.stringify(HEADER)} of \`trinity store export\``)
      }
      continue
    }
    switch (line.kind) {
      case 'birth': store.saveBirth(line.birth); counts.births++; break
      case 'task': store.saveTaskJson(line.record, JSON.stringify(line.record), JSON.stringify(summarizeTask(line.record))); counts.tasks++; break
      case 'message': store.saveMessage(line.message, options.maxMessages); counts.messages++; break
      default: throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `${file}:${number}: kind: expected birth, task or message, got ${JSON.stringify((line as { kind?: unknown }).kind)}`)
    }
    // Now and then, so a big file is not all in flight at once on a replicated store.
    if (number % 1000 === 0) await store.durable()
  }
  if (number === 0) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `${file}: empty; expected the output of \`trinity store export\``)
  await store.durable()
  return counts
}
