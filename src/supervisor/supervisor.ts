/**
 * The supervisor behind `trinity start`: runs the hub, the git bridge (when
 * sync is enabled) and every instance that has a `command` (but not an
 * `adapter: exec` one: the hub runs that per task), each as a child process in
 * its own process group, and keeps them running.
 *
 * - Start order: hub (ready on its ready signal, src/ready.ts, with its URLs), then bridge, then the
 *   instances together (ready on their birth status on the bus, or when their
 *   health URL answers: readiness.ts). Stop order is the reverse.
 * - Crashes restart with backoff; a crash loop stops restarts and shows the
 *   child in state `error` until `trinity/supervisor/command` (POST
 *   /instances/:id/restart) asks again.
 * - An instance whose health stays timeout, offline or error past
 *   `restartUnhealthyAfter` is restarted.
 * - Its state is on the bus, retained, on `trinity/supervisor/status`.
 *
 * The supervisor is a bus client like any other; it imports nothing of the
 * coordinator, and knows the hub only as a child process and a URL.
 */
import type { MqttClient } from 'mqtt'
import type { HealthState } from '../contract/constants.js'
import { Health } from '../contract/payloads/instance.js'
import { SupervisorCommand, type SupervisorStatus } from '../contract/payloads/supervisor.js'
import { decode } from '../contract/payloads/validate.js'
import { topicsFor, type TopicContract } from '../contract/topics.js'
import { parseDuration } from '../config/duration.js'
import type { Config, InstanceConfig } from '../config/schema.js'
import { busUrl, hubHttpUrl } from '../config/urls.js'
import type { Logger } from '../log.js'
import { busClient } from '../net/bus-client.js'
import { clientIds } from '../net/client-ids.js'
import { Child, type ChildSpec } from './child.js'
import { ChildEnvironment } from './child-env.js'
import { Lifeline } from './lifeline.js'
import { relayLine } from './log-relay.js'
import { healthUrlAnswers, isBirthOfRun, readySignal } from './readiness.js'
import type { ReadyAnnouncement } from '../ready.js'

const UNHEALTHY: ReadonlySet<HealthState> = new Set(['timeout', 'offline', 'error'])

export interface SupervisorOptions {
  readonly config: Config
  /** Absolute path of the config file, handed to every child as TRINITY_CONFIG. */
  readonly configFile: string
  readonly log: Logger
  /** How to run the hub alone (`trinity hub`). */
  readonly hub: { command: string; args: readonly string[] }
  /** How to run the git bridge; started only when it is given. */
  readonly bridge?: { command: string; args: readonly string[] } | undefined
}

interface Urls { http: string; mqtt: string }

/** The hub's URLs as the config fixes them, or undefined when a port is 0 (known only once the hub logs it). */
function configuredUrls(config: Config): Urls | undefined {
  if (config.hub.port === 0) return undefined
  const http = hubHttpUrl(config)
  if (config.broker.mode === 'external') return config.broker.url === undefined ? undefined : { http, mqtt: config.broker.url }
  return config.broker.port === 0 ? undefined : { http, mqtt: busUrl(config) }
}

export class Supervisor {
  private readonly topics: TopicContract
  private readonly lifeline = new Lifeline()
  private readonly children: Child[] = []
  private readonly byName = new Map<string, Child>()
  private readonly unhealthySince = new Map<string, number>()
  /** Each child's last error-level log line, to say why it did not start. */
  private readonly lastErrors = new Map<string, string>()
  private state: SupervisorStatus['state'] = 'starting'
  private readonly startedAt = Date.now()
  private urls: Urls | undefined
  private bus: MqttClient | undefined
  private publishQueued = false
  private healthTimer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined
  /** What each child finds in its environment, and the bus login shared with the bridge. */
  private readonly childEnv: ChildEnvironment

  constructor(private readonly options: SupervisorOptions) {
    this.topics = topicsFor(options.config.hub.topicPrefix)
    this.childEnv = new ChildEnvironment(options.config, options.configFile)
  }

  async start(): Promise<Urls> {
    const { config, log } = this.options
    const hub = this.add({ name: 'hub', kind: 'hub', command: this.options.hub.command, args: this.options.hub.args }, { failFast: true })
    const hubReady = hub.start()
    // With fixed ports the instances can be launched while the hub starts:
    // loading their code overlaps the hub's, and they wait for the bus.
    this.urls = configuredUrls(config)
    // An exec instance's command is the hub's to run, once per task: nothing long-running to launch.
    const instances = config.instances.filter((i) => i.command !== undefined && i.adapter !== 'exec')
    if (config.broker.mode === 'embedded' && config.broker.auth.enabled) {
      for (const instance of instances) {
        if (this.childEnv.instanceUser(instance.id) === undefined) log.warn({ instance: instance.id }, 'broker auth is on and broker.auth.users has no user named as this instance: it cannot log in to the bus (give it one, role instance)')
      }
    }
    const launch = (): Promise<PromiseSettledResult<void>[]> => Promise.allSettled(instances.map((i) => this.add(this.instanceSpec(i)).start()))
    const early = this.urls === undefined ? undefined : launch()
    await hubReady
    const urls = this.urls
    if (urls === undefined) throw new Error('hub reported ready without its URLs')
    this.connectBus(urls.mqtt)
    if (this.options.bridge !== undefined) {
      const bridge = this.add({ name: 'bridge', kind: 'bridge', command: this.options.bridge.command, args: this.options.bridge.args })
      await bridge.start().catch((err: Error) => log.error({ err: err.message }, 'git bridge did not start'))
    }
    // Ready with what is ready: an instance that cannot start (its port is
    // taken, it crashes) keeps being restarted by its policy, but does not hold
    // back the others past one readyTimeout after the hub was ready.
    const launched = early ?? launch()
    let deadline: NodeJS.Timeout | undefined
    await Promise.race([launched, new Promise<void>((resolve) => { deadline = setTimeout(resolve, config.supervisor.readyTimeoutMs) })])
    clearTimeout(deadline)
    if (this.stopping !== undefined) throw new Error('stopped while starting')
    const failed: string[] = []
    for (const instance of instances) {
      const child = this.byName.get(instance.id)
      if (child === undefined || child.state === 'running') continue
      const why = this.notReadyReason(child)
      failed.push(`${instance.id}: ${why}`)
      log.error({ instance: instance.id, state: child.state, restarts: child.restarts, err: why }, 'instance did not start')
    }
    this.healthTimer = setInterval(() => this.recycleUnhealthy(), 1000)
    this.state = 'running'
    this.publishStatus()
    const online = instances.length - failed.length
    // A warning when some did not start: "started" at info hid a fleet that never reached the bus (issue #14).
    const say = failed.length === 0 ? log.info.bind(log) : log.warn.bind(log)
    say({
      http: urls.http, mqtt: urls.mqtt, instances: `${online}/${instances.length}`, ...(failed.length === 0 ? {} : { failed }),
      ms: Date.now() - this.startedAt, lifeline: this.lifeline.pid,
    }, 'trinity started')
    return urls
  }

  /** Why a child is not running: its state's reason, its last exit, and its own last error line. */
  private notReadyReason(child: Child): string {
    const exit = child.lastExit === null ? null : child.lastExit.signal !== null ? `killed by ${child.lastExit.signal}` : `exited with code ${child.lastExit.code}`
    const base = child.reason ?? exit ?? `not ready after ${this.options.config.supervisor.readyTimeoutMs} ms, still starting`
    const own = this.lastErrors.get(child.spec.name)
    const restarting = child.restarts > 0 && (child.state === 'backoff' || child.state === 'starting') ? `; restarting (${child.restarts} restarts so far)` : ''
    return `${base}${own === undefined || base.includes(own) ? '' : ` (${own})`}${restarting}`
  }

  /** Reverse start order: instances (they drain), the bridge, then the hub. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { log } = this.options
      this.state = 'stopping'
      clearInterval(this.healthTimer)
      this.publishStatus()
      log.info('stopping')
      await Promise.all(this.children.filter((c) => c.spec.kind === 'instance').map((c) => c.stop()))
      await this.byName.get('bridge')?.stop()
      this.state = 'stopped'
      await this.flushStatus()
      await this.bus?.endAsync().catch(() => undefined)
      await this.byName.get('hub')?.stop()
      this.lifeline.close()
      log.info('stopped')
    })()
    return this.stopping
  }

  /** What `trinity start` announces once started (src/ready.ts): the hub's URLs, the lifeline, every child. */
  readyAnnouncement(): ReadyAnnouncement<'supervisor'> {
    if (this.urls === undefined) throw new Error('not started')
    return { service: 'supervisor', ...this.urls, lifeline: this.lifeline.pid ?? null, children: this.status().children }
  }

  status(): SupervisorStatus {
    return { state: this.state, pid: process.pid, startedAt: this.startedAt, children: this.children.map((c) => c.view()), at: Date.now() }
  }

  private instanceSpec(instance: InstanceConfig): ChildSpec {
    return {
      name: instance.id,
      kind: 'instance',
      command: instance.command ?? '',
      ...(instance.cwd === undefined ? {} : { cwd: instance.cwd }),
      ...(instance.env === undefined ? {} : { env: instance.env }),
    }
  }

  private add(spec: ChildSpec, extra: { failFast?: boolean } = {}): Child {
    const { config, log } = this.options
    const s = config.supervisor
    const child = new Child(spec, {
      ...extra,
      restart: s.restart,
      crashLoop: s.crashLoop,
      readyTimeoutMs: s.readyTimeoutMs,
      stopTimeoutMs: s.stopTimeoutMs,
      lifeline: this.lifeline,
      env: () => this.childEnv.for(spec, this.urls),
    })
    const childLog = log.child(spec.kind === 'instance' ? { service: spec.name, instance: spec.name } : { service: spec.name })
    child.on('line', (stream, line) => {
      relayLine(childLog, stream, line, spec.kind === 'instance' ? spec.name : undefined)
      this.noteError(spec.name, stream, line)
    })
    child.on('message', (message) => {
      const signal = readySignal(child, message)
      if (signal === undefined) return
      // The hub's signal carries its URLs: known only now when a port is 0.
      if (signal.service === 'hub') this.urls = { http: signal.http, mqtt: signal.mqtt }
      child.markReady()
    })
    child.on('state', (state, reason) => {
      const fields = {
        service: spec.name, state, childPid: child.pid, restarts: child.restarts, ...(reason === null ? {} : { reason }),
        // How a stop ended: exit code 0 on SIGTERM, or `SIGKILL` when the grace period ran out.
        ...(state === 'stopped' && child.lastExit !== null ? { exitCode: child.lastExit.code, exitSignal: child.lastExit.signal } : {}),
      }
      if (state === 'error') log.error(fields, 'crash loop: not restarting until asked')
      else if (state === 'backoff') log.warn({ ...fields, restartInMs: (child.nextRestartAt ?? Date.now()) - Date.now() }, 'exited; restarting after backoff')
      else log.info(fields, `child ${state}`)
      if (state === 'starting') {
        this.unhealthySince.delete(spec.name)
        if (spec.kind === 'instance') {
          const instance = config.instances.find((i) => i.id === spec.name)
          void healthUrlAnswers(child, instance).then((ok) => { if (ok) child.markReady() })
        }
      }
      this.publishStatus()
    })
    this.children.push(child)
    this.byName.set(spec.name, child)
    return child
  }

  /** Remembers a child's last error: a pino record at error level or above, or a plain stderr line. */
  private noteError(name: string, stream: 'stdout' | 'stderr', line: string): void {
    if (line.trim() === '') return
    if (line.startsWith('{')) {
      try {
        const record = JSON.parse(line) as { level?: unknown; msg?: unknown }
        if (typeof record.level === 'number') {
          if (record.level >= 50 && typeof record.msg === 'string') this.lastErrors.set(name, record.msg)
          return
        }
      } catch { /* not a log record: a plain line */ }
    }
    if (stream === 'stderr') this.lastErrors.set(name, line.slice(0, 500))
  }

  private connectBus(url: string): void {
    const { log } = this.options
    const bus = busClient({ url, clientId: clientIds.supervisor(), clean: true, reconnectPeriod: 500, ...this.childEnv.busLogin() })
    this.bus = bus
    bus.on('connect', () => {
      bus.subscribe([this.topics.anyInstanceStatus, this.topics.anyHealth, this.topics.supervisorCommand], { qos: 1 })
      this.publishStatus()
    })
    bus.on('error', (err) => log.warn({ err: err.message }, 'bus error'))
    bus.on('message', (topic, payload, packet) => this.onBusMessage(topic, payload, packet.retain))
  }

  private onBusMessage(topic: string, payload: Buffer, retained: boolean): void {
    const t = this.topics.parse(topic)
    if (t === undefined) return
    if (t.kind === 'instanceStatus' && payload.length > 0) {
      const child = this.byName.get(t.instanceId)
      if (child !== undefined && isBirthOfRun(child, payload, retained)) child.markReady()
    } else if (t.kind === 'health' && payload.length > 0) {
      this.onHealth(t.instanceId, payload)
    } else if (t.kind === 'supervisorCommand') {
      const decoded = decode(SupervisorCommand, payload)
      if (!decoded.ok) return void this.options.log.warn({ reason: decoded.reason }, 'rejected a supervisor command')
      const child = this.byName.get(decoded.value.target)
      if (child === undefined || this.state !== 'running') {
        return void this.options.log.warn({ target: decoded.value.target }, 'restart asked for a child this supervisor does not run')
      }
      this.options.log.info({ service: child.spec.name, requestedBy: decoded.value.requestedBy }, 'restart requested')
      void child.restart()
    }
  }

  private onHealth(instanceId: string, payload: Buffer): void {
    const decoded = decode(Health, payload)
    const child = this.byName.get(instanceId)
    if (!decoded.ok || child === undefined || child.state !== 'running') return
    if (UNHEALTHY.has(decoded.value.state)) {
      if (!this.unhealthySince.has(instanceId)) this.unhealthySince.set(instanceId, Date.now())
    } else {
      this.unhealthySince.delete(instanceId)
    }
  }

  private restartUnhealthyAfter(instanceId: string): number | null {
    const own = this.options.config.instances.find((i) => i.id === instanceId)?.restartUnhealthyAfter
    if (own === null) return null
    if (own !== undefined) return parseDuration(own)
    return this.options.config.supervisor.restartUnhealthyAfterMs
  }

  private recycleUnhealthy(): void {
    const now = Date.now()
    for (const [id, since] of this.unhealthySince) {
      const limit = this.restartUnhealthyAfter(id)
      const child = this.byName.get(id)
      if (limit === null || child === undefined || child.state !== 'running' || now - since < limit) continue
      this.unhealthySince.delete(id)
      this.options.log.warn({ service: id, unhealthyMs: now - since }, 'unhealthy too long: restarting')
      child.recycle(`unhealthy for ${now - since} ms`)
    }
  }

  private publishStatus(): void {
    if (this.publishQueued) return
    this.publishQueued = true
    setImmediate(() => {
      this.publishQueued = false
      void this.flushStatus()
    })
  }

  private async flushStatus(): Promise<void> {
    if (this.bus?.connected !== true) return
    await this.bus.publishAsync(this.topics.supervisorStatus, JSON.stringify(this.status()), { qos: 1, retain: true }).catch(() => undefined)
  }
}
