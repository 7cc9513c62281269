/**
 * One sync round (coordination/README.md, "The round"):
 *
 * 1. clear what an interrupted round left; fetch; reset the clone to the
 *    remote head;
 * 2. publish each message addressed to this computer that was not published
 *    before (once: the ids are remembered on disk), and every peer's status;
 *    apply delivery receipts from the peers' status files;
 * 3. append the queued outgoing messages to this computer's own message
 *    files (archiving the oldest when a file grows past `retention`), and
 *    rewrite its status file;
 * 4. commit and push. A push rejected because another computer pushed first
 *    (or a ref was locked) goes back to 1 after a backoff; anything else ends
 *    the round with an error, the queue still on disk.
 *
 * Resetting and re-applying, instead of `git pull --rebase`, makes step 1
 * what a rebase of our one commit would be, except that it cannot stop on a
 * conflict: every file this computer writes is rebuilt from the remote's
 * copy plus its own state. That is also the conflict rule for hand edits:
 * its own status file is ours (rewritten), others' files are theirs (taken
 * from the remote as they are), its message files are the union of the
 * remote's copy and the queue, deduplicated by id.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { InboxFrame } from '../../src/contract/payloads/inbox.js'
import type { ComputerStatus } from '../../src/contract/payloads/bridge.js'
import { isTopicId, type TopicContract } from '../../src/contract/topics.js'
import type { Logger } from '../../src/log.js'
import { TrinityError } from '../../src/errors.js'
import { BusView, peerView } from './computer-state.js'
import {
  ARCHIVE_DIR, COORDINATION_DIR, MESSAGES_DIR, archiveFileName, messageFileName, messageFileTitle, parseArchiveName,
  parseMessageFileName, parseMessages, parseStatus, serializeMessage, serializeMessageFile, serializeStatus, statusFileName,
  type FileMessage,
} from './format.js'
import type { Outbox, OutgoingEntry } from './outbox.js'
import type { GitRepo } from './repo.js'
import type { SeenState } from './state.js'

export interface RoundSettings {
  computer: string
  peers: readonly string[]
  intervalMs: number
  retries: number
  backoffMs: readonly number[]
  retention: number
}

export interface RoundDeps {
  settings: RoundSettings
  repo: GitRepo
  outbox: Outbox
  seen: SeenState
  view: BusView
  topics: TopicContract
  /** QoS 1; resolves on the PUBACK. */
  publish(topic: string, payload: unknown, retain: boolean): Promise<void>
  busConnected(): boolean
  log: Logger
  now(): number
  sleep(ms: number): Promise<void>
}

export interface PushAttempt {
  at: number
  outcome: 'pushed' | 'rejected' | 'failed' | 'unchanged'
  error?: string
}

export interface RoundReport {
  startedAt: number
  endedAt: number
  ok: boolean
  error: string | null
  attempts: PushAttempt[]
  /** Incoming messages published on the bus this round. */
  received: number
  /** Outgoing messages that landed on the remote this round. */
  pushed: number
  /** Outgoing messages whose receipt arrived this round. */
  delivered: number
  /** Milliseconds per phase, summed over attempts (for `npm run bench` and the debug log). */
  phases: Record<string, number>
}

export class RoundRunner {
  /** Until a round finishes cleanly, the next one starts by cleaning the clone. */
  private needsClean = true
  private readonly published = new Map<string, string>()
  /** Whether this attempt wrote a file git does not track yet. */
  private created = false

  constructor(private readonly deps: RoundDeps) {}

  async run(): Promise<RoundReport> {
    const { repo, settings, outbox, seen, log } = this.deps
    const report: RoundReport = { startedAt: this.deps.now(), endedAt: 0, ok: false, error: null, attempts: [], received: 0, pushed: 0, delivered: 0, phases: {} }
    let mark = performance.now()
    const phase = (name: string): void => {
      const now = performance.now()
      report.phases[name] = Math.round(((report.phases[name] ?? 0) + now - mark) * 10) / 10
      mark = now
    }
    try {
      if (repo.recover() || this.needsClean) await repo.clean()
      this.needsClean = true
      phase('recover')
      for (let attempt = 0; ; attempt++) {
        const head = await repo.fetch()
        phase('fetch')
        await repo.resetTo(head)
        phase('reset')
        this.created = false
        // The incoming publishes are in flight while the outgoing messages are written; the status
        // file (with the read marks) waits for their PUBACKs.
        const incoming = this.readIncoming()
        const peers = this.readPeers()
        // Handled below; these only keep a throw in writeOutgoing from leaving them unhandled.
        incoming.catch(() => undefined)
        peers.catch(() => undefined)
        const appended = this.writeOutgoing()
        phase('write')
        report.received += await incoming
        report.delivered += await peers
        phase('incoming')
        const state = await this.writeOwnStatus()
        const committed = await repo.commit(COORDINATION_DIR, commitMessage(settings.computer, appended, state), this.created)
        phase('commit')
        if (!committed) {
          report.attempts.push({ at: this.deps.now(), outcome: 'unchanged' })
          break
        }
        const push = await repo.push()
        phase('push')
        if (push.ok) {
          outbox.markPushed(appended.map((a) => [a.id, a.seq]))
          report.pushed += appended.length
          report.attempts.push({ at: this.deps.now(), outcome: 'pushed' })
          break
        }
        report.attempts.push({ at: this.deps.now(), outcome: push.retryable ? 'rejected' : 'failed', error: firstLine(push.error) })
        if (!push.retryable) throw new TrinityError('TRINITY_ERR_PUSH_FAILED', firstLine(push.error))
        if (attempt >= settings.retries) throw new TrinityError('TRINITY_ERR_PUSH_FAILED', `rejected ${attempt + 1} times (another computer kept pushing first)`)
        const base = settings.backoffMs[Math.min(attempt, settings.backoffMs.length - 1)] ?? 1000
        // Jitter (0.5–1.5 × base): without it, writers that collided retry in lockstep ([GIT-TRANSPORT.md]).
        await this.deps.sleep(Math.round(base * (0.5 + Math.random())))
        log.debug({ attempt: attempt + 1 }, 'push rejected; fetching and retrying')
      }
      this.needsClean = false
      report.ok = true
    } catch (err) {
      report.error = firstLine((err as Error).message)
      log.warn({ err: report.error }, 'sync round failed; the outgoing queue stays on disk')
    } finally {
      outbox.maybeCompact()
      seen.save()
      phase('save')
      report.endedAt = this.deps.now()
    }
    return report
  }

  private write(path: string, text: string): void {
    if (!this.created && !existsSync(path)) this.created = true
    writeFileSync(path, text)
  }

  private path(file: string): string {
    return join(this.deps.repo.dir, file)
  }

  private archives(): { name: string; from: string; to: string; firstSeq: number; lastSeq: number }[] {
    const dir = this.path(ARCHIVE_DIR)
    if (!existsSync(dir)) return []
    return readdirSync(dir).flatMap((name) => {
      const parsed = parseArchiveName(name)
      return parsed === undefined ? [] : [{ name, ...parsed }]
    })
  }

  private readMessages(file: string, from: string, to: string, text = readFileSync(file, 'utf8')): FileMessage[] {
    const { messages, problems } = parseMessages(text)
    for (const p of problems) this.deps.log.warn({ file, line: p.line, reason: p.reason }, 'skipped a damaged message block')
    return messages.filter((m) => m.from === from && m.to === to)
  }

  /** The read marks in this computer's own status file as the remote has it. */
  private publishedMarks(): ComputerStatus['read'] {
    const file = this.path(statusFileName(this.deps.settings.computer))
    if (!existsSync(file)) return {}
    const parsed = parseStatus(readFileSync(file, 'utf8'))
    return parsed.ok ? parsed.status.read : {}
  }

  /** Publish every message for this computer not published before. Returns how many. */
  private async readIncoming(): Promise<number> {
    const { settings, seen, log } = this.deps
    const me = settings.computer
    const dir = this.path(MESSAGES_DIR)
    if (!existsSync(dir)) return 0
    const archives = this.archives()
    const published = this.publishedMarks()
    let count = 0
    for (const name of readdirSync(dir).sort()) {
      const pair = parseMessageFileName(name)
      if (pair === undefined || pair.to !== me || pair.from === me) continue
      const from = pair.from
      const mark = published[from]
      if (seen.lastSeq(from) === 0 && mark !== undefined) {
        // No memory of this sender (the workdir's state was lost): our pushed status file says what we read.
        log.warn({ from, upTo: mark.seq }, 'no local record of messages read from this computer; trusting our status file in the repository')
        seen.mark(from, mark.id, mark.seq)
        seen.raiseFloor(from, mark.seq)
      }
      const live = this.readMessages(join(dir, name), from, me)
      const firstLive = live.reduce((min, m) => Math.min(min, m.seq), Infinity)
      const known = seen.lastSeq(from)
      // Messages archived since our last read: the archive names say which files hold them.
      const older = archives
        .filter((a) => a.from === from && a.to === me && a.lastSeq > known && a.firstSeq < firstLive)
        .flatMap((a) => this.readMessages(this.path(`${ARCHIVE_DIR}/${a.name}`), from, me))
      const ids = new Set<string>()
      const fresh = [...older, ...live]
        .sort((a, b) => a.seq - b.seq)
        .filter((m) => !ids.has(m.id) && (ids.add(m.id), !seen.has(from, m.id, m.seq)))
      if (fresh.length === 0) continue
      if (!this.deps.busConnected()) {
        log.warn({ from, messages: fresh.length }, 'bus not connected: incoming messages wait for the next round')
        continue
      }
      const results = await Promise.allSettled(fresh.map((m) => this.deliver(m)))
      // Mark only the unbroken prefix that reached the bus: the last one marked is the receipt the sender sees.
      for (const [index, result] of results.entries()) {
        const message = fresh[index]
        if (result.status === 'rejected' || message === undefined) {
          log.warn({ from, err: result.status === 'rejected' ? String(result.reason) : 'missing' }, 'publishing an incoming message failed; retried next round')
          break
        }
        seen.mark(from, message.id, message.seq)
        count++
      }
      seen.save()
    }
    return count
  }

  private async deliver(m: FileMessage): Promise<void> {
    const { topics } = this.deps
    // A file message is a ComputerMessage: published as parsed.
    const publishes = [this.deps.publish(topics.computerMessage(m.from), m, false)]
    if (m.instance !== undefined) {
      const frame: InboxFrame = { kind: 'message', message: { id: m.id, from: m.fromInstance ?? m.from, to: m.instance, message: m.message, ts: m.ts } }
      publishes.push(this.deps.publish(topics.instanceInbox(m.instance), frame, false))
    }
    await Promise.all(publishes)
  }

  /** Publish each peer's status (retained, when it changed) and apply its receipts. Returns receipts applied. */
  private async readPeers(): Promise<number> {
    const { settings, outbox, log } = this.deps
    const me = settings.computer
    const computers = new Set(settings.peers)
    const dir = this.path(COORDINATION_DIR)
    if (existsSync(dir)) {
      for (const name of readdirSync(dir)) {
        const m = /^COMPUTER_(.+)\.md$/.exec(name)
        if (m?.[1] !== undefined && m[1] !== me && isTopicId(m[1])) computers.add(m[1])
      }
    }
    let delivered = 0
    const publishes: Promise<void>[] = []
    for (const peer of [...computers].sort()) {
      const file = this.path(statusFileName(peer))
      let status: ComputerStatus | undefined
      if (existsSync(file)) {
        const parsed = parseStatus(readFileSync(file, 'utf8'))
        if (parsed.ok) status = parsed.status
        else log.warn({ file: statusFileName(peer), reason: parsed.reason }, 'unreadable status file')
      }
      const view = peerView(peer, status, settings.intervalMs, this.deps.now())
      const receipt = status?.read[me]
      if (receipt !== undefined) delivered += outbox.markDelivered(peer, receipt.seq)
      publishes.push(this.publishStatus(view))
    }
    await Promise.all(publishes)
    return delivered
  }

  /** Retained `computer/{n}/status`, only when it changed. */
  async publishStatus(status: ComputerStatus): Promise<void> {
    const key = JSON.stringify(status)
    if (this.published.get(status.computer) === key || !this.deps.busConnected()) return
    this.published.set(status.computer, key)
    try {
      await this.deps.publish(this.deps.topics.computerStatus(status.computer), status, true)
    } catch (err) {
      this.published.delete(status.computer)
      this.deps.log.warn({ computer: status.computer, err: (err as Error).message }, 'publishing a computer status failed')
    }
  }

  /** Append queued messages to this computer's message files. Returns what was appended, with positions. */
  private writeOutgoing(): { id: string; to: string; seq: number }[] {
    const { settings, outbox } = this.deps
    const me = settings.computer
    const appended: { id: string; to: string; seq: number }[] = []
    const archives = this.archives()
    for (const to of outbox.recipients().sort()) {
      const name = messageFileName(me, to)
      const file = this.path(name)
      const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
      const inFile = text === '' ? [] : this.readMessages(file, me, to, text)
      // Already on the remote (a push whose success we did not get to record): the union keeps one copy.
      const byId = new Map(inFile.map((m) => [m.id, m.seq]))
      outbox.markPushed(outbox.queuedFor(to).flatMap((e) => { const seq = byId.get(e.id); return seq === undefined ? [] : [[e.id, seq] as [string, number]] }))
      let archived = 0
      for (const a of archives) if (a.from === me && a.to === to) archived = Math.max(archived, a.lastSeq)
      // Pushed, not yet read, and gone from the live file (a hand edit): the union puts them back at their place.
      const restored = outbox.pushedFor(to).filter((e) => e.seq !== null && e.seq > archived && !byId.has(e.id)).map((e) => toFileMessage(e, me, e.seq ?? 0))
      const queued = outbox.queuedFor(to)
      if (queued.length === 0 && restored.length === 0) continue
      const lastSeq = [...inFile, ...restored].reduce((max, m) => Math.max(max, m.seq), archived)
      const fresh = queued.map((e, i) => toFileMessage(e, me, lastSeq + 1 + i))
      mkdirSync(this.path(MESSAGES_DIR), { recursive: true })
      const all = [...inFile, ...restored].sort((a, b) => a.seq - b.seq).concat(fresh)
      if (restored.length > 0 && all.length <= settings.retention) {
        this.deps.log.warn({ file: name, restored: restored.length }, 'messages missing from our own file (hand-edited?) were put back')
        this.write(file, serializeMessageFile(me, to, all))
      } else if (all.length > settings.retention) {
        // Keep the newest half of `retention` live; the rest goes to one archive file named by its seq range.
        const cut = all.length - Math.floor(settings.retention / 2)
        const old = all.slice(0, cut)
        const first = old[0]
        const last = old[old.length - 1]
        if (first !== undefined && last !== undefined) {
          mkdirSync(this.path(ARCHIVE_DIR), { recursive: true })
          this.write(this.path(archiveFileName(me, to, first.seq, last.seq)), serializeMessageFile(me, to, old))
        }
        this.write(file, serializeMessageFile(me, to, all.slice(cut)))
      } else {
        const head = text === '' ? messageFileTitle(me, to) : text.endsWith('\n\n') ? text : text.endsWith('\n') ? `${text}\n` : `${text}\n\n`
        this.write(file, head + fresh.map((m) => `${serializeMessage(m)}\n`).join(''))
      }
      for (const m of fresh) appended.push({ id: m.id, to, seq: m.seq })
    }
    return appended
  }

  /** This computer's status file, from the bus view and the read marks. */
  private async writeOwnStatus(): Promise<ComputerStatus> {
    const { settings, view, seen } = this.deps
    const now = new Date(this.deps.now()).toISOString()
    const status: ComputerStatus = {
      computer: settings.computer,
      state: view.state(),
      updated: now,
      lastSync: now,
      queueDepth: view.queueDepth(),
      instances: view.instances(),
      read: seen.readMarks(),
    }
    mkdirSync(this.path(COORDINATION_DIR), { recursive: true })
    this.write(this.path(statusFileName(settings.computer)), serializeStatus(status))
    return status
  }
}

function toFileMessage(e: OutgoingEntry, from: string, seq: number): FileMessage {
  const { state: _state, seq: _seq, ...message } = e
  return { ...message, from, seq }
}

function commitMessage(computer: string, appended: { to: string }[], status: ComputerStatus): string {
  const perPeer = new Map<string, number>()
  for (const a of appended) perPeer.set(a.to, (perPeer.get(a.to) ?? 0) + 1)
  const parts = [...perPeer].map(([to, n]) => `${n} message${n === 1 ? '' : 's'} to ${to}`)
  const receipts = Object.entries(status.read).map(([from, r]) => `${from}#${r.seq}`)
  return [
    `computer ${computer}: ${parts.length === 0 ? 'status' : parts.join(', ')}; ${status.state}`,
    '',
    `state ${status.state}, ${status.instances.length} instances, queue depth ${status.queueDepth}`,
    receipts.length === 0 ? 'read: nothing yet' : `read up to: ${receipts.join(', ')}`,
  ].join('\n')
}

function firstLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('hint:'))
  return lines.find((l) => /rejected|fatal|error/i.test(l)) ?? lines[0] ?? text
}
