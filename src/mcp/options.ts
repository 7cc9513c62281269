/**
 * Who `trinity mcp` is and where the hub is, from its flags, then the
 * environment, then the config file (when there is one), then defaults.
 *
 * `--url` is the CLI's global option: for `mcp` a `mqtt://` / `mqtts://` /
 * `ws://` URL names the bus, an `http(s)://` one the hub (as for every other
 * command); `--hub` names the hub explicitly.
 */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { isTopicId } from '../contract/topics.js'
import { ENV } from '../config/env.js'
import { configPath, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { busUrl, hubHttpUrl } from '../config/urls.js'
import { TrinityError } from '../errors.js'

/** What the flags give (commander's parse of `trinity mcp …`). */
export interface McpFlags {
  readonly id?: string
  readonly capabilities?: string
  readonly role?: string
  readonly name?: string
  readonly concurrency?: string
  readonly hub?: string
  readonly stateDir?: string
  readonly http?: string
}

/** The CLI's global options. */
export interface GlobalFlags {
  readonly url?: string
  readonly config?: string
  readonly token?: string
}

export interface McpOptions {
  readonly id: string
  readonly capabilities: readonly string[]
  readonly role: string | undefined
  readonly name: string | undefined
  /** Tasks the hub sends at once: 1 by default, since one agent session works on one thing at a time. */
  readonly concurrency: number
  readonly busUrl: string
  readonly hubUrl: string
  /** The bearer token for the hub's API (hub.auth.tokens): --token, else $TRINITY_TOKEN. */
  readonly token: string | undefined
  readonly prefix: string
  readonly username: string | undefined
  readonly password: string | undefined
  readonly stateDir: string
  /** Streamable HTTP on this loopback port instead of stdio (0: any free port). */
  readonly httpPort: number | undefined
}

const BUS_SCHEME = /^(mqtts?|wss?|tcp):\/\//

export function resolveMcpOptions(flags: McpFlags, global: GlobalFlags, env: NodeJS.ProcessEnv = process.env): McpOptions {
  const id = flags.id ?? env[ENV.instanceId]
  if (id === undefined || id === '') throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `--id: required (or $${ENV.instanceId})`, { field: 'id' })
  if (!isTopicId(id)) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `--id: ${JSON.stringify(id)} is not an id (letters, digits, ., _, -; at most 64)`, { field: 'id' })
  const capabilities = (flags.capabilities ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '')
  for (const c of capabilities) {
    if (!/^[a-z][a-z0-9_]*$/.test(c)) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `--capabilities: ${JSON.stringify(c)} is not a snake_case task type`, { field: 'capabilities' })
  }
  const concurrency = flags.concurrency === undefined ? 1 : Number(flags.concurrency)
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `--concurrency: expected a whole number ≥ 1, got ${flags.concurrency}`, { field: 'concurrency' })
  const httpPort = flags.http === undefined ? undefined : Number(flags.http)
  if (httpPort !== undefined && (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535)) {
    throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `--http: expected a port (0-65535), got ${flags.http}`, { field: 'http' })
  }
  const config = optionalConfig(global.config, env)
  const globalUrl = global.url
  const bus = globalUrl !== undefined && BUS_SCHEME.test(globalUrl) ? globalUrl : nonEmpty(env[ENV.mqttUrl]) ?? (config === undefined ? 'mqtt://127.0.0.1:1883' : busUrl(config))
  const hub = flags.hub ?? (globalUrl !== undefined && !BUS_SCHEME.test(globalUrl) ? globalUrl : undefined) ?? nonEmpty(env[ENV.url]) ?? (config === undefined ? 'http://127.0.0.1:8900' : hubHttpUrl(config))
  return {
    id, capabilities, role: flags.role, name: flags.name, concurrency,
    busUrl: bus, hubUrl: hub.replace(/\/$/, ''), token: nonEmpty(global.token) ?? nonEmpty(env[ENV.token]), prefix: config?.hub.topicPrefix ?? 'trinity',
    username: nonEmpty(env[ENV.mqttUsername]), password: nonEmpty(env[ENV.mqttPassword]),
    stateDir: resolve(flags.stateDir ?? join(homedir(), '.trinity', 'mcp', id)),
    httpPort,
  }
}

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value)

/** The config file when there is one; `trinity mcp` runs in any project directory, most without one. */
function optionalConfig(explicit: string | undefined, env: NodeJS.ProcessEnv): Config | undefined {
  try {
    return loadConfigFile(configPath(explicit, env), env)
  } catch (err) {
    // A file named on purpose that is broken is an error; a missing default file is not.
    if (explicit !== undefined || env[ENV.config] !== undefined) throw err
    return undefined
  }
}
