/**
 * What each child of the supervisor finds in its environment (README, "trinity
 * start"), built here from the names in src/config/env.ts:
 *
 * - every child: the config file, `TRINITY_SUPERVISED=1` and the validated
 *   config (so it skips the YAML; config/resolved-env.ts);
 * - the hub: the bus secret of this run, its admin login on the embedded broker;
 * - the bridge and the instances: the hub's URLs, once they are known (a port 0
 *   is known only from the hub's ready signal);
 * - each instance: its id and configured port, so any program knows them
 *   without reading the YAML;
 * - the bridge: the bus login the supervisor uses itself;
 * - each instance, with broker auth on: the login of the broker user named as
 *   its id (`broker.auth.users`), so the demo fleet and any SDK program log in
 *   instead of being refused in a loop (issue #14).
 *
 * - every run of every child: its tag, ENV.runId (runTag below), laid over
 *   everything else, so what the run leaves behind (a `setsid` grandchild too)
 *   is found and killed when it ends (run-reaper.ts).
 *
 * The instance's own `env` from the config is laid over this by child.ts.
 */
import { randomBytes } from 'node:crypto'
import { ENV } from '../config/env.js'
import { resolvedConfigEnv } from '../config/resolved-env.js'
import type { Config } from '../config/schema.js'
import { HUB_USERNAME } from '../hub-identity.js'
import type { ChildSpec } from './child.js'

export interface BusLogin { username?: string; password?: string }

export class ChildEnvironment {
  /** Made per start, handed to the hub and the bridge only (hub-identity.ts). */
  private readonly secret = randomBytes(24).toString('base64url')
  /** Serialised once: every (re)start of every child gets the same JSON. */
  private readonly resolved: Record<string, string>

  constructor(private readonly config: Config, private readonly configFile: string) {
    this.resolved = resolvedConfigEnv(config)
  }

  /**
   * With broker auth on, the hub's own admin credential is a secret this
   * supervisor makes and hands to the hub and the bridge only (instances use
   * their configured users); on an external broker, the configured login.
   */
  busLogin(): BusLogin {
    const { broker } = this.config
    if (broker.mode === 'embedded') return broker.auth.enabled ? { username: HUB_USERNAME, password: this.secret } : {}
    return {
      ...(broker.username === undefined ? {} : { username: broker.username }),
      ...(broker.password === undefined ? {} : { password: broker.password }),
    }
  }

  /** With broker auth on the embedded broker: the configured user an instance logs in as (its username is the instance's id). */
  instanceUser(id: string): { username: string; password: string } | undefined {
    const { broker } = this.config
    if (broker.mode !== 'embedded' || !broker.auth.enabled) return undefined
    return broker.auth.users.find((u) => u.username === id && u.role !== 'reader')
  }

  /** The environment for one start of `spec`; `urls`: the hub's, undefined while it has not said them. */
  for(spec: ChildSpec, urls: { http: string; mqtt: string } | undefined): Record<string, string> {
    const env: Record<string, string> = { [ENV.config]: this.configFile, [ENV.supervised]: '1', ...this.resolved }
    if (spec.kind === 'hub') env[ENV.hubSecret] = this.secret
    if (spec.kind !== 'hub' && urls !== undefined) {
      env[ENV.mqttUrl] = urls.mqtt
      env[ENV.url] = urls.http
    }
    if (spec.kind === 'instance') {
      env[ENV.instanceId] = spec.name
      const port = this.config.instances.find((i) => i.id === spec.name)?.port
      if (port !== undefined) env[ENV.instancePort] = String(port)
      const user = this.instanceUser(spec.name)
      if (user !== undefined) {
        env[ENV.mqttUsername] = user.username
        env[ENV.mqttPassword] = user.password
      }
    }
    if (spec.kind === 'bridge') {
      const { username, password } = this.busLogin()
      if (username !== undefined) env[ENV.mqttUsername] = username
      if (password !== undefined) env[ENV.mqttPassword] = password
    }
    return env
  }
}

/** The tag of one run (run-reaper.ts newRunId): child.ts lays it over the instance's own `env`, which cannot untag a run. */
export function runTag(runId: string): Record<string, string> {
  return { [ENV.runId]: runId }
}
