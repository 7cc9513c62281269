/**
 * Defaults in one place, and the step from a validated raw config to the
 * resolved, frozen Config. The routing table defaults to the seed's.
 */
import { createHash } from 'node:crypto'
import { topicsFor } from '../contract/topics.js'
import { parseDuration } from './duration.js'
import { parseSize } from './size.js'
import type { Config, HttpTokenConfig, RawConfig, Route } from './schema.js'

/** The seed's routing table: task type → the instances (or roles) that take it. */
export const SEED_ROUTES: Readonly<Record<string, Route>> = {
  pattern_analysis: { targets: ['araya', 'c1'], strategy: 'all' },
  build_project: { targets: ['builder', 'c1'], strategy: 'all' },
  monitor_system: { targets: ['observatory'], strategy: 'least-loaded' },
  track_user: { targets: ['visitor-intelligence'], strategy: 'least-loaded' },
  analyze_data: { targets: ['analytics'], strategy: 'least-loaded' },
  bug_fix: { targets: ['c1'], strategy: 'least-loaded' },
  deployment: { targets: ['c1'], strategy: 'least-loaded' },
  general: { targets: ['c1'], strategy: 'least-loaded' },
}

export const DEFAULTS = {
  hub: { host: '127.0.0.1', port: 8900, dataDir: './data', topicPrefix: 'trinity', statsInterval: '1s', requestTimeout: '30s' },
  broker: { mode: 'embedded', host: '127.0.0.1', port: 1883, websocket: true, persistence: 'disk', tlsPort: 8883 },
  log: { level: 'info', pretty: 'auto', maxSize: '10m', maxFiles: 5 },
  supervisor: {
    readyTimeout: '30s',
    stopTimeout: '10s',
    restart: { base: '1s', factor: 2, max: '60s', jitter: 0.2, resetAfter: '60s' },
    crashLoop: { restarts: 5, window: '2m' },
  },
  health: { interval: '30s', timeout: '5s', degradedAfter: '1s', missesBeforeOffline: 2, passesBeforeOnline: 1, forgetAfter: '24h' },
  tasks: {
    lease: '60s',
    inputTimeout: '24h',
    maxAttempts: 3,
    retryBackoff: { base: '1s', factor: 2, max: '30s' },
    defaultPriority: 'normal',
    keepFinished: 10_000,
  },
  messages: { maxCount: 10_000, maxAge: '7d' },
  store: { sync: 'normal', backend: 'sqlite', replicas: 3, lease: '10s' },
  limits: { maxPayload: '1mb', maxDepth: 64, maxClientBuffer: '8mb', maxConnectionsPerUser: 100, sessionMaxMessages: 10_000, sessionMaxAge: '24h', maxJoinedInstances: 1000 },
  sync: {
    enabled: false, branch: 'main', workdir: './data/sync', computer: '1', interval: '5m', jitter: '30s',
    retries: 4, backoff: ['2s', '4s', '8s', '16s'], retention: 1000,
  },
} as const

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

/** YAML reads `2` as a number; every id in the Config is a string. */
const idString = (id: string | number): string => String(id)

/** What `limits.maxPacket` allows beyond `limits.maxPayload` by default: 64 KiB, the longest topic and the headers (issue #14). */
const PACKET_HEADROOM = 64 * 1024

function route(raw: { readonly targets: readonly (string | number)[]; readonly strategy?: Route['strategy'] }): Route {
  return { targets: raw.targets.map(idString), strategy: raw.strategy ?? 'least-loaded' }
}

type RawToken = NonNullable<NonNullable<NonNullable<RawConfig['hub']>['auth']>['tokens']>[number]

/** A token as its sha256: the secret itself goes no further than this (load.ts has checked that exactly one form is set). */
function resolveToken(raw: RawToken, env: NodeJS.ProcessEnv): HttpTokenConfig {
  const secret = raw.token ?? (raw.tokenEnv === undefined ? undefined : env[raw.tokenEnv])
  const sha256 = secret === undefined ? raw.tokenHash ?? '' : createHash('sha256').update(secret).digest('hex')
  return { name: raw.name, scope: raw.scope, sha256 }
}

/** `env`: where `tokenEnv` names are read. */
export function resolveConfig(raw: RawConfig, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  const d = DEFAULTS
  const hub = raw.hub ?? {}
  const broker = raw.broker ?? {}
  const health = raw.health ?? {}
  const tasks = raw.tasks ?? {}
  const backoff = tasks.retryBackoff ?? {}
  const messages = raw.messages ?? {}
  const sup = raw.supervisor ?? {}
  const restart = sup.restart ?? {}
  const sync = raw.sync ?? {}
  const routes: Record<string, Route> = {}
  for (const [type, r] of Object.entries<Parameters<typeof route>[0]>(raw.routes ?? SEED_ROUTES)) routes[type] = route(r)
  const config: Config = {
    source,
    hub: {
      host: hub.host ?? d.hub.host,
      port: hub.port ?? d.hub.port,
      dataDir: hub.dataDir ?? d.hub.dataDir,
      topicPrefix: hub.topicPrefix ?? d.hub.topicPrefix,
      statsIntervalMs: parseDuration(hub.statsInterval ?? d.hub.statsInterval),
      requestTimeoutMs: parseDuration(hub.requestTimeout ?? d.hub.requestTimeout),
      auth: { tokens: (hub.auth?.tokens ?? []).map((t) => resolveToken(t, env)) },
      allowInsecure: hub.allowInsecure ?? false,
      allowedOrigins: hub.allowedOrigins ?? [],
      tls: hub.tls === undefined ? null : { cert: hub.tls.cert, key: hub.tls.key },
    },
    broker: {
      mode: broker.mode ?? d.broker.mode,
      host: broker.host ?? d.broker.host,
      port: broker.port ?? d.broker.port,
      websocket: broker.websocket ?? d.broker.websocket,
      persistence: broker.persistence ?? d.broker.persistence,
      url: broker.url,
      flavor: broker.flavor ?? 'mqtt',
      username: broker.username,
      password: broker.password,
      auth: { enabled: broker.auth?.enabled ?? false, users: (broker.auth?.users ?? []).map((u) => ({ ...u, username: idString(u.username) })) },
      tls: broker.tls === undefined ? null : { cert: broker.tls.cert, key: broker.tls.key, port: broker.tls.port ?? d.broker.tlsPort },
    },
    log: {
      level: raw.log?.level ?? d.log.level,
      pretty: raw.log?.pretty ?? d.log.pretty,
      file: raw.log?.file ?? null,
      maxSize: raw.log?.maxSize ?? d.log.maxSize,
      maxFiles: raw.log?.maxFiles ?? d.log.maxFiles,
    },
    supervisor: {
      readyTimeoutMs: parseDuration(sup.readyTimeout ?? d.supervisor.readyTimeout),
      stopTimeoutMs: parseDuration(sup.stopTimeout ?? d.supervisor.stopTimeout),
      restart: {
        baseMs: parseDuration(restart.base ?? d.supervisor.restart.base),
        factor: restart.factor ?? d.supervisor.restart.factor,
        maxMs: parseDuration(restart.max ?? d.supervisor.restart.max),
        jitter: restart.jitter ?? d.supervisor.restart.jitter,
        resetAfterMs: parseDuration(restart.resetAfter ?? d.supervisor.restart.resetAfter),
      },
      crashLoop: {
        restarts: sup.crashLoop?.restarts ?? d.supervisor.crashLoop.restarts,
        windowMs: parseDuration(sup.crashLoop?.window ?? d.supervisor.crashLoop.window),
      },
      restartUnhealthyAfterMs: sup.restartUnhealthyAfter === undefined || sup.restartUnhealthyAfter === null ? null : parseDuration(sup.restartUnhealthyAfter),
    },
    health: {
      intervalMs: parseDuration(health.interval ?? d.health.interval),
      timeoutMs: parseDuration(health.timeout ?? d.health.timeout),
      degradedAfterMs: parseDuration(health.degradedAfter ?? d.health.degradedAfter),
      missesBeforeOffline: health.missesBeforeOffline ?? d.health.missesBeforeOffline,
      passesBeforeOnline: health.passesBeforeOnline ?? d.health.passesBeforeOnline,
      forgetAfterMs: health.forgetAfter === null ? null : parseDuration(health.forgetAfter ?? d.health.forgetAfter),
    },
    tasks: {
      leaseMs: parseDuration(tasks.lease ?? d.tasks.lease),
      inputTimeoutMs: tasks.inputTimeout === null ? null : parseDuration(tasks.inputTimeout ?? d.tasks.inputTimeout),
      maxAttempts: tasks.maxAttempts ?? d.tasks.maxAttempts,
      retryBackoff: {
        baseMs: parseDuration(backoff.base ?? d.tasks.retryBackoff.base),
        factor: backoff.factor ?? d.tasks.retryBackoff.factor,
        maxMs: parseDuration(backoff.max ?? d.tasks.retryBackoff.max),
      },
      defaultPriority: tasks.defaultPriority ?? d.tasks.defaultPriority,
      fallback: tasks.fallback === undefined || tasks.fallback === null ? null : route(tasks.fallback),
      keepFinished: tasks.keepFinished ?? d.tasks.keepFinished,
    },
    messages: {
      maxCount: messages.maxCount ?? d.messages.maxCount,
      maxAgeMs: parseDuration(messages.maxAge ?? d.messages.maxAge),
    },
    store: {
      sync: raw.store?.sync ?? d.store.sync,
      backend: raw.store?.backend ?? d.store.backend,
      urls: raw.store?.url === undefined ? [] : raw.store.url.split(','),
      replicas: raw.store?.replicas ?? d.store.replicas,
      leaseMs: parseDuration(raw.store?.lease ?? d.store.lease),
      login: raw.store?.username === undefined || raw.store.password === undefined ? null : { username: raw.store.username, password: raw.store.password },
    },
    limits: {
      maxPayload: parseSize(raw.limits?.maxPayload ?? d.limits.maxPayload),
      maxDepth: raw.limits?.maxDepth ?? d.limits.maxDepth,
      // Unset, it grows with maxPayload: twice the largest message, if that is over the default.
      maxClientBuffer: raw.limits?.maxClientBuffer === undefined
        ? Math.max(parseSize(d.limits.maxClientBuffer), 2 * parseSize(raw.limits?.maxPayload ?? d.limits.maxPayload))
        : parseSize(raw.limits.maxClientBuffer),
      // Unset: the largest payload plus room for its topic (at most 65,535 bytes) and headers.
      maxPacket: raw.limits?.maxPacket === undefined
        ? parseSize(raw.limits?.maxPayload ?? d.limits.maxPayload) + PACKET_HEADROOM
        : parseSize(raw.limits.maxPacket),
      maxConnectionsPerUser: raw.limits?.maxConnectionsPerUser ?? d.limits.maxConnectionsPerUser,
      sessionMaxMessages: raw.limits?.sessionMaxMessages ?? d.limits.sessionMaxMessages,
      sessionMaxAgeMs: parseDuration(raw.limits?.sessionMaxAge ?? d.limits.sessionMaxAge),
      maxJoinedInstances: raw.limits?.maxJoinedInstances ?? d.limits.maxJoinedInstances,
    },
    sync: {
      enabled: sync.enabled ?? d.sync.enabled,
      remote: sync.remote,
      branch: sync.branch ?? d.sync.branch,
      workdir: sync.workdir ?? d.sync.workdir,
      computer: idString(sync.computer ?? d.sync.computer),
      peers: (sync.peers ?? []).map(idString),
      intervalMs: parseDuration(sync.interval ?? d.sync.interval),
      jitterMs: parseDuration(sync.jitter ?? d.sync.jitter),
      retries: sync.retries ?? d.sync.retries,
      backoffMs: (sync.backoff ?? d.sync.backoff).map(parseDuration),
      // Default: every `computer/+/send` topic of this hub's prefix.
      mirror: [...(sync.mirror ?? [topicsFor(hub.topicPrefix ?? d.hub.topicPrefix).anyComputerSend])],
      retention: sync.retention ?? d.sync.retention,
    },
    // An absent `instances` key means none configured (not the reference fleet, which config/trinity.yaml
    // lists): instances then join by birth, and the start-up warnings name routes nobody matches yet.
    instances: (raw.instances ?? []).map(({ id, role, ...rest }) => ({ ...rest, id: idString(id), ...(role === undefined ? {} : { role: idString(role) }) })),
    routes,
  }
  return deepFreeze(config)
}
