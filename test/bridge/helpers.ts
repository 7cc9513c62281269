/**
 * Fixtures for the git bridge's tests: a bare repo in a temp dir, a bridge
 * config, bus recorders. Real git, real MQTT; nothing mocked.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { testConfig, waitFor, type ConfigObject } from '../helpers/hub.js'

export const GIT_ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0' }

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** An empty shared repository, as every computer's `sync.remote`. */
export function bareRepo(dir: string, name = 'shared.git'): string {
  const path = join(dir, name)
  mkdirSync(path, { recursive: true })
  git(path, 'init', '--quiet', '--bare', '-b', 'main')
  return path
}

/** A clone for a test to look at (or hand-edit) the shared repo, with its own identity. */
export function humanClone(remote: string, dir: string): string {
  git(join(dir, '..'), 'clone', '--quiet', remote, dir)
  git(dir, 'config', 'user.name', 'A Human')
  git(dir, 'config', 'user.email', 'human@example.invalid')
  return dir
}

export interface SyncOptions {
  computer: string
  peers: string[]
  remote: string
  workdir: string
  interval?: string
  jitter?: string
  retries?: number
  backoff?: string[]
  retention?: number
  prefix?: string
  enabled?: boolean
}

export function syncSection(o: SyncOptions): ConfigObject {
  return {
    enabled: o.enabled ?? true, remote: o.remote, workdir: o.workdir, computer: o.computer, peers: o.peers,
    interval: o.interval ?? '300ms', jitter: o.jitter ?? '50ms', retries: o.retries ?? 4, backoff: o.backoff ?? ['20ms', '40ms', '80ms', '160ms'],
    ...(o.retention === undefined ? {} : { retention: o.retention }),
  }
}

/** A hub config object (for startTestHub) with a sync section. */
export async function hubWithSync(dataDir: string, o: SyncOptions, extra: ConfigObject = {}): Promise<ConfigObject> {
  return testConfig(dataDir, { ...extra, sync: syncSection(o), ...(o.prefix === undefined ? {} : { hub: { topicPrefix: o.prefix } }) })
}

export function resolve(config: ConfigObject): Config {
  return parseConfig(stringify(config), 'test.yaml')
}

export interface Received {
  topic: string
  payload: string
  retain: boolean
  /** When it arrived (Date.now()). */
  at: number
}

/** A bus client that records everything on its filters. */
export class Recorder {
  readonly received: Received[] = []
  private constructor(readonly client: MqttClient) {}

  static async start(url: string, filters: string[]): Promise<Recorder> {
    const client = await mqtt.connectAsync(url, { clean: true, reconnectPeriod: 200 })
    const recorder = new Recorder(client)
    client.on('message', (topic, payload, packet) => recorder.received.push({ topic, payload: payload.toString('utf8'), retain: packet.retain, at: Date.now() }))
    if (filters.length > 0) await client.subscribeAsync(filters, { qos: 1 }).catch(async (err: unknown) => { await client.endAsync(true); throw err })
    return recorder
  }

  on(topic: string): Received[] {
    return this.received.filter((r) => r.topic === topic)
  }

  json<T>(topic: string): T[] {
    return this.on(topic).map((r) => JSON.parse(r.payload) as T)
  }

  async waitFor(topic: string, count: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => this.on(topic).length >= count, timeoutMs, `${count} messages on ${topic} (have ${this.on(topic).length})`)
  }

  stop(): Promise<void> {
    return this.client.endAsync(true)
  }
}
