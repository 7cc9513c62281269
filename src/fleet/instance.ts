#!/usr/bin/env node
/**
 * One demo instance of the reference fleet, built on the agent SDK:
 * `node dist/src/fleet/instance.js <id> [--config file]`. It takes its role,
 * capabilities and port from the config, does the small real work of
 * ./work.ts for each capability, and serves GET /health on its port.
 * TRINITY_MQTT_URL overrides the broker (TRINITY_MQTT_USERNAME / _PASSWORD, its
 * login, the SDK reads; `trinity start` sets them from the broker user named as
 * the instance), TRINITY_INSTANCE_PORT the port
 * (0: any free one, printed in the ready log line), TRINITY_WORKSPACE the
 * folder build_project writes under (default <hub.dataDir>/workspace; each
 * instance in its own <id>/ there).
 */
import { createServer, type Server } from 'node:http'
import { join, resolve } from 'node:path'
import { connectAgent, type Agent, type TaskHandler } from '../agent/index.js'
import { configPath, resolvedConfigFromEnv } from '../config/resolved-env.js'
import { ENV } from '../config/env.js'
import { busUrl, hubHttpUrl } from '../config/urls.js'
import { createLogger } from '../log.js'
import { AnsweredIds, acknowledgement, preview } from './messages.js'
import { analyzeData, buildProject, monitorSystem, patternAnalysis, trackUser, writePlan } from './work.js'

const args = process.argv.slice(2)
const id = args.find((a) => !a.startsWith('--'))
const configFlag = args.indexOf('--config')
// Under the supervisor the config arrives already validated (see ENV.resolvedConfig).
const config = resolvedConfigFromEnv() ?? (await import('../config/load.js')).loadConfigFile(configPath(configFlag >= 0 ? args[configFlag + 1] : undefined))
const log = createLogger({ level: config.log.level, pretty: config.log.pretty, name: id ?? 'instance' })
const instance = config.instances.find((i) => i.id === id)
if (id === undefined || instance === undefined) {
  process.stderr.write(`usage: instance.js <id>; known ids: ${config.instances.map((i) => i.id).join(', ')}\n`)
  process.exit(2)
}

const hubUrl = process.env[ENV.url] ?? hubHttpUrl(config)
// One folder per instance, in this checkout's data: builder and c1 both take
// build_project (route `all`), and two checkouts on one machine must not meet.
const workspace = join(resolve(process.env[ENV.workspace] ?? join(config.hub.dataDir, 'workspace')), instance.id)
const handlers: Record<string, TaskHandler> = {
  analyze_data: (content) => analyzeData(content),
  pattern_analysis: (content) => patternAnalysis(content),
  track_user: (content) => trackUser(content),
  // TRINITY_TOKEN (the instance's `env` in the config): a read token, for a hub with tokens.
  monitor_system: () => monitorSystem(hubUrl, process.env[ENV.token]),
  build_project: (content, ctx) => { ctx.progress('scaffolding'); return buildProject(content, workspace, ctx.taskId) },
  bug_fix: (content) => writePlan('bug_fix', content),
  deployment: (content) => writePlan('deployment', content),
  general: (content) => writePlan('general', content),
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(err.code === 'EADDRINUSE' ? `${instance?.id}: port ${port} is already in use (set instances[].port, or stop what holds it)` : `${instance?.id}: cannot listen on ${port}: ${err.message}`))
    })
    server.listen(port, config.hub.host, () => {
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : port)
    })
  })
}

const portSetting = process.env[ENV.instancePort] ?? (instance.port === undefined ? undefined : String(instance.port))
let agent: Agent | undefined
let port: number | null = null
if (portSetting !== undefined) {
  const server = createServer((request, response) => {
    const ok = request.url === '/health'
    response.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' })
    response.end(JSON.stringify(ok ? { status: 'ok', instance: instance.id, running: agent?.running ?? 0 } : { error: 'not found' }))
  })
  try {
    port = await listen(server, Number(portSetting))
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  }
}

const url = process.env[ENV.mqttUrl] ?? busUrl(config)
// Handlers go in with the connection: the birth announces them all, the first one too.
const own: Record<string, TaskHandler> = {}
for (const capability of instance.capabilities ?? []) {
  const handler = handlers[capability]
  if (handler !== undefined) own[capability] = handler
  else log.warn({ capability }, 'no demo handler for this capability')
}
const joined = await connectAgent({
  id: instance.id, role: instance.role ?? instance.id, name: instance.name ?? instance.id, handlers: own,
  ...(instance.concurrency === undefined ? {} : { concurrency: instance.concurrency }),
  prefix: config.hub.topicPrefix, ...(url === undefined ? {} : { url }),
  onError: (err) => log.warn({ code: err.code, err: err.message }, 'dropped an inbox frame'),
  // This program, not the SDK, decides that it exits: below.
  handleSignals: false,
})
agent = joined
// SIGTERM / SIGINT: finish the running tasks, say offline, exit 0 (the health server would keep the process up).
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void joined.drain().then(() => process.exit(0)))
}
// Every message is logged; the generalist (C1 Mechanic) answers each, once (see ./messages.ts).
const answers = (instance.capabilities ?? []).includes('general')
const answered = new AnsweredIds()
const self = { id: instance.id, name: instance.name ?? instance.id }
joined.onMessage((message) => {
  log.info({ from: message.from, to: message.to, id: message.id, ...(message.replyTo === undefined ? {} : { replyTo: message.replyTo }), text: preview(message.message) }, 'message received')
  const answer = answers ? acknowledgement(message, self) : null
  if (answer === null || !answered.add(message.id)) return
  joined.send(message.from, answer, { replyTo: message.id }).then(
    (sent) => log.info({ to: sent.to, id: sent.id, replyTo: message.id }, 'message answered'),
    (err: unknown) => log.warn({ to: message.from, err: (err as Error).message }, 'could not answer a message'),
  )
})
log.info({ instance: instance.id, port, capabilities: instance.capabilities ?? [] }, 'instance ready')
