/**
 * A hub on `store.backend: nats-kv` (issue #13): one of several, on one NATS
 * cluster, of which one leads. Each starts as a standby:
 * 1. it answers HTTP on its port as a standby (standby-http.ts: /health says
 *    so, everything else is redirected to the leader);
 * 2. it waits for the leader lease (leader-lease.ts), held by the hub that
 *    renews it, free once that hub stops renewing for `store.lease`;
 * 3. holding it, it closes the standby server, opens the task store with the
 *    lease as its fence (nats-kv-store.ts: every write is refused once the
 *    lease's deadline has passed, and a compare-and-set on its key's revision
 *    besides), and starts the whole hub on the same port (hub.ts). Its
 *    coordinator connects with the coordinator's client id and takes over the
 *    MQTT session, with every message the old leader had not acknowledged.
 *
 * A leader that loses its lease (a refused renewal, a pause past its
 * deadline) or whose store is fenced is `deposed`: it must stop (the CLI exits
 * non-zero, so a supervisor starts it again, as a standby). Nothing it had not
 * acknowledged was acknowledged by it afterwards (durable-gate.ts).
 */
import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import type { Config } from './config/schema.js'
import { hubHttpUrl } from './config/urls.js'
import type { Logger } from './log.js'
import { isTrinityError, TrinityError } from './errors.js'
import { readPem, startWithStore, type Hub } from './hub.js'
import { LeaderLease } from './coordinator/leader-lease.js'
import { NatsKvStore } from './coordinator/nats-kv-store.js'
import { bucketPrefixFor } from './coordinator/nats-kv.js'
import { startStandbyHttp, type StandbyHttp } from './standby-http.js'

export interface ClusterHub {
  readonly role: 'leader' | 'standby'
  /** This hub's HTTP URL: a standby's answers until it leads, then the hub's. */
  readonly httpUrl: string
  /** Settles with the running hub once this one holds the lease and has taken over. */
  readonly leading: Promise<Hub>
  /** Settles, with the reason, when this hub may lead no longer: the process must stop. */
  readonly deposed: Promise<string>
  stop(): Promise<void>
}

/** After a failed takeover, the wait before the next try as a standby doubles from this, up to the lease's TTL. */
const RETRY_FIRST_MS = 250

export async function startClusterHub(config: Config, log: Logger): Promise<ClusterHub> {
  const prefix = bucketPrefixFor(config.hub.topicPrefix)
  const tls = config.hub.tls === null ? null : { cert: readPem(config.hub.tls.cert, 'hub.tls.cert'), key: readPem(config.hub.tls.key, 'hub.tls.key') }
  let leaderUrl: string | undefined
  let standby: StandbyHttp | undefined = await startStandbyHttp({ host: config.hub.host, port: config.hub.port, tls, leader: () => leaderUrl })
  const port = standby.port
  const httpUrl = hubHttpUrl(config, port)
  const hubId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
  const openLease = (): Promise<LeaderLease> =>
    LeaderLease.open({ servers: config.store.urls, login: config.store.login, prefix, ttlMs: config.store.leaseMs, holder: { hub: hubId, url: httpUrl }, replicas: config.store.replicas })
  let lease: LeaderLease
  try {
    lease = await openLease()
  } catch (err) {
    await standby.close()
    if ((err as { code?: unknown }).code === 'AUTHORIZATION_VIOLATION') {
      const who = config.store.login === null ? 'no store.username (the servers ask for a login)' : `store.username "${config.store.login.username}" and its store.password`
      throw new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `NATS at ${config.store.urls.join(', ')} refused ${who}`, { cause: err })
    }
    throw new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `store.url: could not reach NATS JetStream at ${config.store.urls.join(', ')}: ${(err as Error).message}`, { cause: err })
  }
  let role: 'leader' | 'standby' = 'standby'
  let stopped = false
  let hub: Hub | undefined
  let depose!: (reason: string) => void
  const deposed = new Promise<string>((resolve) => { depose = resolve })

  // The standby's view of the leader, for its redirects: the lease's value, read every third of its TTL.
  const watchLeader = async (): Promise<void> => {
    leaderUrl = (await lease.current().catch(() => undefined))?.url
  }
  await watchLeader()
  let leaderTimer: NodeJS.Timeout | undefined
  log.info({ hub: hubId, http: httpUrl, leader: leaderUrl ?? null, store: config.store.urls }, 'trinity hub started as a standby: waiting for the leader lease')

  // Holding the lease: the store (fenced by it), then the whole hub on the standby's port.
  const takeOver = async (): Promise<Hub> => {
    const startedAt = performance.now()
    log.info({ hub: hubId, epoch: lease.epoch }, 'leader lease acquired: taking over')
    const store = await NatsKvStore.open({ servers: config.store.urls, login: config.store.login, prefix, replicas: config.store.replicas, fence: lease })
    try {
      await standby?.close()
      standby = undefined
      const started = await startWithStore({ ...config, hub: { ...config.hub, port } }, log, store)
      log.info({ hub: hubId, epoch: lease.epoch, takeoverMs: Math.round(performance.now() - startedAt), tasks: started.coordinator.scheduler.counts() }, 'this hub holds the leader lease and leads')
      return started
    } catch (err) {
      await store.close()
      throw err
    }
  }

  // A takeover that fails (NATS unreachable or a request unanswered while a node is lost, the store
  // fenced by a newer leader) leaves nothing behind: the lease is handed back and this hub waits as a
  // standby again, on the same port, rather than exit and leave the cluster without a candidate.
  const backToStandby = async (err: unknown, attempt: number): Promise<void> => {
    const retryInMs = Math.min(config.store.leaseMs, RETRY_FIRST_MS * 2 ** (attempt - 1))
    log.error({ hub: hubId, code: isTrinityError(err) ? err.code : undefined, err: (err as Error).message, retryInMs }, 'could not take over as the leader: back to standby')
    await lease.release().catch(() => undefined)
    await lease.close().catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, retryInMs))
    if (stopped) return
    standby ??= await startStandbyHttp({ host: config.hub.host, port, tls, leader: () => leaderUrl })
    lease = await openLease()
  }

  const leading = (async (): Promise<Hub> => {
    for (let attempt = 1; ; attempt++) {
      try {
        leaderTimer ??= setInterval(() => void watchLeader(), Math.max(100, Math.round(config.store.leaseMs / 3)))
        await lease.acquire()
        clearInterval(leaderTimer)
        leaderTimer = undefined
        // Until this hub leads, its standby answers 503 NOT_LEADER, not a redirect to the hub it replaces.
        leaderUrl = undefined
        if (stopped) break
        hub = await takeOver()
        break
      } catch (err) {
        if (stopped) break
        await backToStandby(err, attempt).catch((again: unknown) => log.error({ err: (again as Error).message }, 'the standby could not reopen the lease'))
      }
    }
    if (hub === undefined) throw new TrinityError('TRINITY_ERR_NOT_LEADER', 'stopped before it could lead')
    role = 'leader'
    // Lost during the takeover too: then this resolves at once.
    void lease.lost.then((reason) => depose(`the leader lease was lost: ${reason}`))
    void hub.coordinator.storeLost.then((reason) => depose(`the task store was fenced: ${reason.message}`))
    return hub
  })()
  // A failure to take over is said by whoever awaits `leading`; unawaited, it must not crash the process.
  leading.catch(() => undefined)

  return {
    get role() { return role },
    httpUrl,
    leading,
    deposed,
    async stop() {
      stopped = true
      clearInterval(leaderTimer)
      await hub?.stop().catch(() => undefined)
      // Stepping down on purpose: the tombstone lets a standby take over at once, not after the TTL.
      if (role === 'leader') await lease.release().catch(() => undefined)
      await lease.close().catch(() => undefined)
      await standby?.close().catch(() => undefined)
    },
  }
}
