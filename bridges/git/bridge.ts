/**
 * The git bridge: one bus client, one clone, one round at a time.
 *
 * It reaches the hub only over MQTT, so it runs wherever the bus is
 * reachable. Its session is persistent (clean: false, QoS 1): messages for
 * other computers published while it is down are queued by the broker and
 * delivered when it returns; each one is on disk in the outbox (fsynced)
 * before its PUBACK goes out. Rounds run every `sync.interval` ± `sync.jitter`,
 * on a `bridge/sync` request, and sooner after a failure (the `sync.backoff`
 * schedule, then the interval again).
 */
import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { ComputerSend, type BridgeState, type BridgeStatus, type ComputerStatus } from '../../src/contract/payloads/bridge.js'
import type { HubError } from '../../src/contract/payloads/hub.js'
import { decode } from '../../src/contract/payloads/validate.js'
import { topicMatches, topicsFor, type TopicContract } from '../../src/contract/topics.js'
import { ENV } from '../../src/config/env.js'
import type { Config } from '../../src/config/schema.js'
import { busUrl } from '../../src/config/urls.js'
import { silentLogger, type Logger } from '../../src/log.js'
import { busClient, firstConnect } from '../../src/net/bus-client.js'
import { clientIds } from '../../src/net/client-ids.js'
import { TrinityError } from '../../src/errors.js'
import { BusView } from './computer-state.js'
import { Outbox, type OutgoingMessage } from './outbox.js'
import { takePidLock } from './pid-lock.js'
import { GitRepo } from './repo.js'
import { RoundRunner, type RoundReport } from './round.js'
import { SeenState } from './state.js'

const PUBLISH_TIMEOUT_MS = 10_000

export interface BridgeOptions {
  /** Bus URL; default: TRINITY_MQTT_URL, else the config's broker. */
  mqttUrl?: string
  username?: string
  password?: string
  log?: Logger
  /** Resolve relative `sync.workdir` against this (default: the process's cwd). */
  cwd?: string
}

export interface Bridge {
  readonly computer: string
  readonly workdir: string
  /** Every round so far (the last 200), oldest first. */
  readonly rounds: readonly RoundReport[]
  status(): BridgeStatus
  /** Run a round now (or join the one running, then run another) and return its report. */
  syncNow(reason?: string): Promise<RoundReport>
  /** Finish the current round (bounded by `graceMs`), then disconnect. */
  stop(graceMs?: number): Promise<void>
}

/** The bus URL the bridge uses: TRINITY_MQTT_URL, else the config's external URL or embedded broker. */
export function busUrlFor(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[ENV.mqttUrl]
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : busUrl(config)
}

export async function startBridge(config: Config, options: BridgeOptions = {}): Promise<Bridge> {
  const sync = config.sync
  if (sync.remote === undefined) throw new TrinityError('TRINITY_ERR_CONFIG_INVALID', 'sync.remote is not set: the bridge needs the shared repository', { field: 'sync.remote' })
  const log = options.log ?? silentLogger()
  const topics = topicsFor(config.hub.topicPrefix)
  const workdir = resolve(options.cwd ?? process.cwd(), sync.workdir)
  const stateDir = join(workdir, 'state')
  mkdirSync(stateDir, { recursive: true })
  const releaseLock = takePidLock(join(stateDir, 'bridge.pid'))
  const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(sync.remote) || /^[^/]+@[^:]+:/.test(sync.remote) ? sync.remote : resolve(options.cwd ?? process.cwd(), sync.remote)
  const repo = new GitRepo(join(workdir, 'repo'), remote, sync.branch)
  let outbox: Outbox | undefined
  let client: MqttClient | undefined
  try {
    await repo.init({ name: `trinity bridge (computer ${sync.computer})`, email: `bridge-${sync.computer}@trinity.invalid` })
    outbox = new Outbox(join(stateDir, 'outbox.log'))
    const seen = new SeenState(join(stateDir, 'seen.json'))
    const view = new BusView()
    const url = options.mqttUrl ?? busUrlFor(config)
    const username = options.username ?? process.env[ENV.mqttUsername]
    const password = options.password ?? process.env[ENV.mqttPassword]
    client = busClient({
      url, clientId: clientIds.bridge(topics.prefix, sync.computer), clean: false, reconnectPeriod: 500, connectTimeoutMs: 10_000, username, password,
    })
    const bridge = new GitBridge(config, topics, repo, outbox, seen, view, client, log, workdir, releaseLock)
    await bridge.start()
    return bridge
  } catch (err) {
    await client?.endAsync(true).catch(() => undefined)
    outbox?.close()
    releaseLock()
    throw err
  }
}

class GitBridge implements Bridge {
  readonly computer: string
  readonly rounds: RoundReport[] = []
  private readonly runner: RoundRunner
  private state: BridgeState = 'IDLE'
  private lastRoundAt: number | null = null
  private lastSuccessAt: number | null = null
  private lastError: string | null = null
  private nextRoundAt: number | null = null
  private timer: NodeJS.Timeout | undefined
  private statusTimer: NodeJS.Timeout | undefined
  private running: Promise<RoundReport> | undefined
  private again: Promise<RoundReport> | undefined
  private failures = 0
  private stopped = false

  constructor(
    private readonly config: Config,
    private readonly topics: TopicContract,
    repo: GitRepo,
    private readonly outbox: Outbox,
    private readonly seen: SeenState,
    private readonly view: BusView,
    private readonly client: MqttClient,
    private readonly log: Logger,
    readonly workdir: string,
    private readonly releaseLock: () => void,
  ) {
    this.computer = config.sync.computer
    const s = config.sync
    this.runner = new RoundRunner({
      settings: { computer: s.computer, peers: s.peers, intervalMs: s.intervalMs, retries: s.retries, backoffMs: s.backoffMs, retention: s.retention },
      repo, outbox, seen, view, topics, log,
      publish: (topic, payload, retain) => this.publish(topic, payload, retain),
      busConnected: () => this.client.connected,
      now: () => Date.now(),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    })
  }

  async start(): Promise<void> {
    const client = this.client
    client.on('error', (err) => this.log.warn({ err: err.message }, 'bus client error'))
    client.on('offline', () => this.log.warn('bridge lost the bus; reconnecting'))
    // The PUBACK for a mirrored message goes out only once it is fsynced in the outbox.
    client.handleMessage = (packet: IPublishPacket, callback: (error?: Error) => void) => {
      try {
        this.onMessage(packet.topic, typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload, callback)
      } catch (err) {
        // Most likely the outbox could not be written (disk full?): no PUBACK, so the broker keeps the
        // message for this persistent session and delivers it again after the reconnect.
        this.log.error({ err, topic: packet.topic }, 'handling a bus message failed; not acknowledged')
        callback(err as Error)
      }
    }
    await firstConnect(client, {
      retryForMs: 15_000, error: () => new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `could not reach the bus at ${(client.options.protocol ?? 'mqtt')}://${client.options.host}:${client.options.port}`),
    })
    const t = this.topics
    const subscriptions: Record<string, { qos: 0 | 1 }> = {
      [t.bridgeSync]: { qos: 1 }, [t.anyInstanceStatus]: { qos: 0 }, [t.anyHealth]: { qos: 0 }, [t.hubStats]: { qos: 0 },
    }
    for (const filter of this.config.sync.mirror) subscriptions[filter] = { qos: 1 }
    await client.subscribeAsync(subscriptions)
    this.log.info({ computer: this.computer, workdir: this.workdir, remote: this.config.sync.remote, peers: this.config.sync.peers }, 'bridge ready')
    this.publishStatus()
    this.schedule(0)
  }

  private onMessage(topic: string, payload: Buffer, ack: (error?: Error) => void): void {
    const parsed = this.topics.parse(topic)
    switch (parsed?.kind) {
      case 'bridgeSync':
        ack()
        void this.syncNow('bridge/sync request').catch(() => undefined)
        return
      case 'instanceStatus': this.view.instanceStatus(parsed.instanceId, payload); ack(); return
      case 'health': this.view.health(parsed.instanceId, payload); ack(); return
      case 'hubStats': this.view.hubStats(payload); ack(); return
      // The bridge's own output is never mirrored back (no loops if `mirror` is broad).
      case 'computerMessage': case 'computerStatus': case 'bridgeStatus': ack(); return
      default: break
    }
    if (!this.config.sync.mirror.some((filter) => topicMatches(filter, topic))) { ack(); return }
    for (const message of this.outgoingFrom(topic, payload)) this.outbox.add(message)
    // One fsync covers this and everything else queued in the same tick; then the PUBACK.
    this.outbox.whenDurable((error) => {
      if (error !== undefined) this.log.error({ err: error.message, topic }, 'outbox fsync failed; not acknowledged, the broker will redeliver')
      ack(error)
      this.queueChanged()
    })
  }

  /** A mirrored publish as outgoing messages: a `computer/{n}/send` goes to n when n is a peer; any other topic to every peer. */
  private outgoingFrom(topic: string, payload: Buffer): OutgoingMessage[] {
    const parsed = this.topics.parse(topic)
    if (parsed?.kind === 'computerSend') {
      if (parsed.computer === this.computer) {
        this.log.warn({ topic }, 'a message for this computer itself: nothing to carry')
        return []
      }
      // The shared repo is every computer's: only files to a computer this one lists in `sync.peers`
      // are written there (issue #14), so a typo or a hostile client cannot fill it with `{me}_TO_{anyone}.md`.
      if (!this.config.sync.peers.includes(parsed.computer)) {
        const reason = `to: computer ${parsed.computer} is not in sync.peers (${this.config.sync.peers.join(', ') || 'none'}); not written to the shared repo`
        this.log.warn({ topic, reason }, 'dropped a message for a computer that is not a peer')
        this.client.publish(this.topics.hubErrors, JSON.stringify({ topic, code: 'TRINITY_ERR_RECIPIENT_UNKNOWN', reason, at: Date.now() } satisfies HubError), { qos: 0 })
        return []
      }
      const decoded = decode(ComputerSend, payload)
      if (!decoded.ok) {
        this.log.warn({ topic, reason: decoded.reason }, 'rejected an outgoing message')
        this.client.publish(this.topics.hubErrors, JSON.stringify({ topic, code: 'TRINITY_ERR_BAD_PAYLOAD', reason: decoded.reason, at: Date.now() } satisfies HubError), { qos: 0 })
        return []
      }
      const s = decoded.value
      return [{
        id: s.id ?? randomUUID(), to: parsed.computer, message: s.message, ts: Date.now(),
        ...(s.from === undefined ? {} : { fromInstance: s.from }), ...(s.instance === undefined ? {} : { instance: s.instance }),
      }]
    }
    const message = payload.toString('utf8')
    const id = randomUUID()
    return this.config.sync.peers.map((to) => ({ id: `${id}-${to}`.slice(0, 64), to, message, topic, ts: Date.now() }))
  }

  status(): BridgeStatus {
    const { queued, awaitingReceipt } = this.outbox.counts()
    const outgoing: BridgeStatus['outgoing'] = [
      ...this.outbox.recentlyDelivered.map((d) => ({ id: d.id, to: d.to, seq: d.seq, state: 'delivered' as const })),
      ...this.outbox.list().map((e) => ({ id: e.id, to: e.to, seq: e.seq, state: e.state })),
    ].slice(-100)
    return {
      computer: this.computer, state: this.state, lastRoundAt: this.lastRoundAt, lastSuccessAt: this.lastSuccessAt,
      lastError: this.lastError, queued, awaitingReceipt, nextRoundAt: this.nextRoundAt, outgoing, at: Date.now(),
    }
  }

  /** The queue grew: say so on `bridge/status`, at most every 200 ms. */
  private queueChanged(): void {
    if (this.statusTimer !== undefined) return
    this.statusTimer = setTimeout(() => { this.statusTimer = undefined; this.publishStatus() }, 200)
    this.statusTimer.unref?.()
  }

  private publishStatus(): void {
    if (!this.client.connected) return
    this.client.publish(this.topics.bridgeStatus, JSON.stringify(this.status()), { qos: 1, retain: true }, (err) => {
      if (err !== undefined && err !== null) this.log.warn({ err: err.message }, 'publishing the bridge status failed')
    })
  }

  /**
   * QoS 1, resolved by the PUBACK. Bounded: if the bus drops mid-round the round must not hang until it
   * returns (the message is then not marked as published, and is published again next round: at least once).
   */
  private publish(topic: string, payload: unknown, retain: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no PUBACK for ${topic} within ${PUBLISH_TIMEOUT_MS} ms`)), PUBLISH_TIMEOUT_MS)
      this.client.publish(topic, JSON.stringify(payload), { qos: 1, retain }, (err) => {
        clearTimeout(timer)
        if (err === undefined || err === null) resolve()
        else reject(err)
      })
    })
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.nextRoundAt = Date.now() + delayMs
    this.timer = setTimeout(() => { this.timer = undefined; void this.syncNow('interval').catch(() => undefined) }, delayMs)
    this.timer.unref?.()
  }

  /** After a success: the interval ± jitter. After k failures in a row: backoff[k-1], then the interval again. */
  private nextDelay(ok: boolean): number {
    const s = this.config.sync
    if (!ok && this.failures <= s.backoffMs.length) return s.backoffMs[this.failures - 1] ?? s.intervalMs
    const jitter = s.jitterMs === 0 ? 0 : Math.round((Math.random() * 2 - 1) * s.jitterMs)
    return Math.max(0, s.intervalMs + jitter)
  }

  syncNow(reason = 'request'): Promise<RoundReport> {
    if (this.stopped) return Promise.reject(new Error('bridge stopped'))
    if (this.running === undefined) return this.startRound(reason)
    // A round is running: one more after it covers every request that arrives meanwhile.
    this.again ??= this.running.then((previous) => {
      this.again = undefined
      return this.stopped ? previous : this.startRound(reason)
    })
    return this.again
  }

  private startRound(reason: string): Promise<RoundReport> {
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
    this.nextRoundAt = null
    this.state = 'SYNCING'
    this.lastRoundAt = Date.now()
    this.publishStatus()
    void this.runner.publishStatus(this.ownStatus('SYNCING'))
    this.log.debug({ reason }, 'sync round')
    const round = this.runner.run().then((report) => {
      this.rounds.push(report)
      if (this.rounds.length > 200) this.rounds.shift()
      if (report.ok) {
        this.failures = 0
        this.lastSuccessAt = report.endedAt
        this.lastError = null
        this.state = 'IDLE'
      } else {
        this.failures++
        this.lastError = report.error
        this.state = 'ERROR'
      }
      this.log.info({ ok: report.ok, received: report.received, pushed: report.pushed, delivered: report.delivered, attempts: report.attempts.length, ms: report.endedAt - report.startedAt, ...(report.error === null ? {} : { error: report.error }) }, 'sync round done')
      void this.runner.publishStatus(this.ownStatus(this.view.state()))
      this.running = undefined
      this.schedule(this.nextDelay(report.ok))
      this.publishStatus()
      return report
    })
    this.running = round
    return round
  }

  private ownStatus(state: ComputerStatus['state']): ComputerStatus {
    return {
      computer: this.computer, state, updated: new Date().toISOString(),
      lastSync: this.lastSuccessAt === null ? null : new Date(this.lastSuccessAt).toISOString(),
      queueDepth: this.view.queueDepth(), instances: this.view.instances(), read: this.seen.readMarks(),
    }
  }

  async stop(graceMs = 30_000): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.statusTimer !== undefined) clearTimeout(this.statusTimer)
    const current = this.again ?? this.running
    if (current !== undefined) {
      await Promise.race([current.catch(() => undefined), new Promise((r) => setTimeout(r, graceMs).unref())])
    }
    await this.client.endAsync().catch(() => undefined)
    this.outbox.close()
    this.releaseLock()
  }
}
