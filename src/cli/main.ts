#!/usr/bin/env -S node --max-semi-space-size=2 --expose-gc
/**
 * The `trinity` command. `start` runs the supervisor (which runs `hub`, the
 * bridge and the instances as children); `hub` runs the hub alone in this
 * process; the other commands are clients of a running hub, over HTTP
 * (submit, send, status, restart) or the bus (tail), so they work from any
 * machine that can reach it.
 *
 * The shebang's node flags are the hub's (src/hub-node-args.ts), so that
 * `trinity hub` run directly gets them as the supervisor's hub child does.
 */
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, Option } from 'commander'
import type { HubSummary, InstanceList } from '../contract/http.js'
import { PRIORITIES, TERMINAL_TASK_STATES } from '../contract/constants.js'
import type { TaskRecord } from '../contract/payloads/task.js'
import { topicsFor } from '../contract/topics.js'
import { DEFAULT_CONFIG_PATH, configPath } from '../config/path.js'
import { EXIT_CONFIG } from '../config/exit-code.js'
import { resolvedConfigFromEnv } from '../config/resolved-env.js'
import { ENV } from '../config/env.js'
import type { Config } from '../config/schema.js'
import { busUrl, hubHttpUrl } from '../config/urls.js'
import { TrinityError, isTrinityError } from '../errors.js'
import { createLogger, createLoggerWithFile } from '../log.js'
import { busLogin, isLoginRefused } from '../net/bus-login.js'
import { VERSION } from '../version.js'
import { announceReady } from '../ready.js'
import { HUB_NODE_ARGS } from '../hub-node-args.js'
import { HttpError, request } from './http-client.js'
import type { TaskStore } from '../coordinator/task-store.js'

/** A repeat of the first stop signal within this long is the same signal delivered twice (see `start`). */
const SIGNAL_ECHO_MS = 1000
/** How often `start` checks that its parent is still there. */
const PARENT_POLL_MS = 1000
/** `restart` waits this long for the new run to be up before it says so and gives up. */
const RESTART_WAIT_MS = 60_000
/** `trinity hub` on store.backend nats-kv, when it lost the leader lease or its store was fenced: start it again (as a standby). */
const DEPOSED_EXIT_CODE = 3
/** How long a deposed hub's stop may take before it exits anyway. */
const DEPOSED_STOP_BOUND_MS = 10_000
/** The git bridge's process entry point, run by the supervisor when sync is enabled. */
const BRIDGE_MAIN = fileURLToPath(new URL('../../bridges/git/main.js', import.meta.url))

/**
 * The config loader (the YAML parser with it), imported when a command reads the file: a hub under
 * `trinity start` is handed its config resolved (config/resolved-env.ts) and never loads it. That
 * saves the parse at start, and the yaml package costs 1-2.3 MB of RSS (0.6 MB of heap) on top of
 * the hub's core, as measured: small, within the noise of a whole hub's idle RSS (issue #12).
 */
const configLoader = (): Promise<typeof import('../config/load.js')> => import('../config/load.js')

/** Where the hub is: --url, else TRINITY_URL, else from the config file if there is one, else the default. */
async function hubUrl(options: { url?: string; config?: string }): Promise<string> {
  if (options.url !== undefined) return options.url.replace(/\/$/, '')
  const fromEnv = process.env[ENV.url]
  if (fromEnv !== undefined) return fromEnv.replace(/\/$/, '')
  try {
    const config = (await configLoader()).loadConfigFile(configPath(options.config))
    return hubHttpUrl(config)
  } catch {
    return 'http://127.0.0.1:8900'
  }
}

/** The bearer token for the hub's API: --token, else TRINITY_TOKEN; none when neither is set. */
function hubToken(): string | undefined {
  const token = program.opts<{ token?: string }>().token ?? process.env[ENV.token]
  return token === undefined || token === '' ? undefined : token
}

/** One call to the hub's HTTP API, with the token when there is one. */
function api<T = unknown>(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  return request<T>(base, method, path, body, hubToken())
}

// `trinity tail | head`: once the reader has gone, stop quietly instead of dying on EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

const program = new Command()
program.name('trinity').description('Coordination hub for a fleet of agents').version(VERSION)
program.option('-c, --config <file>', `config file (default: $${ENV.config} or ${DEFAULT_CONFIG_PATH})`)
program.option('-u, --url <url>', `hub HTTP URL for client commands (default: $${ENV.url} or from the config)`)
program.option('-t, --token <token>', `bearer token for client commands, when the hub has hub.auth.tokens (default: $${ENV.token})`)

program
  .command('start')
  .description('run everything, supervised: the hub, the git bridge (when sync is enabled) and every instance with a command')
  .action(async () => {
    const file = resolve(configPath(program.opts<{ config?: string }>().config))
    // The processes that run exec instances' programs check that they exist (exit 2 if not).
    const config = (await configLoader()).loadConfigOrExit(file, { executables: true })
    const options = { level: config.log.level, pretty: config.log.pretty }
    const log = config.log.file === null ? createLogger(options) : await createLoggerWithFile(options, { file: config.log.file, maxSize: config.log.maxSize, maxFiles: config.log.maxFiles })
    const cli = fileURLToPath(import.meta.url)
    // Imported here: the supervisor process must not load the hub's code (Fastify, Aedes, SQLite).
    const { Supervisor } = await import('../supervisor/supervisor.js')
    const supervisor = new Supervisor({
      config,
      configFile: file,
      log,
      hub: { command: process.execPath, args: [...HUB_NODE_ARGS, cli, 'hub', '--config', file] },
      bridge: config.sync.enabled ? { command: process.execPath, args: [...HUB_NODE_ARGS, BRIDGE_MAIN, '--config', file] } : undefined,
    })
    // SIGTERM, SIGINT and SIGHUP (the terminal closed) all stop everything
    // gracefully; a second signal exits
    // at once and leaves the rest to the lifeline. Under `npm start`, a Ctrl-C
    // reaches this process twice (from the terminal, then forwarded by npm):
    // the same signal within a moment of the first is that echo, not a second one.
    let signals = 0
    let first: { signal: string; at: number } | undefined
    const shutdown = (signal: string): void => {
      if (first !== undefined && first.signal === signal && Date.now() - first.at < SIGNAL_ECHO_MS) return
      if (++signals > 1) { log.warn('second signal: exiting now; the lifeline stops what is left'); process.exit(1) }
      first = { signal, at: Date.now() }
      log.info({ signal }, 'shutting down')
      void supervisor.stop().then(() => { log.flush(); process.exit(0) })
    }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal))
    // The parent went away (npm killed by a signal it does not forward, such as
    // SIGHUP or SIGKILL; a service manager's shell): stop as if told to, rather
    // than live on as an orphan holding the ports. Linux re-parents an orphan, so
    // its parent PID changes.
    const parent = process.ppid
    const parentWatch = setInterval(() => {
      if (process.ppid === parent || signals > 0) return
      clearInterval(parentWatch)
      log.warn({ parent }, 'parent process exited: stopping')
      shutdown('parent-exited')
    }, PARENT_POLL_MS)
    parentWatch.unref()
    try {
      await supervisor.start()
    } catch (err) {
      if (signals > 0) return
      log.fatal({ err: (err as Error).message }, 'could not start')
      await supervisor.stop()
      log.flush()
      process.exit(1)
    }
    // To a parent (a test, a service manager) that started this process with a channel; `trinity started` is for people.
    announceReady(supervisor.readyAnnouncement())
  })

program
  .command('hub')
  .description('run the hub alone: embedded broker, coordinator and HTTP API (what `start` supervises)')
  .action(async () => {
    // Under `trinity start`, the config the supervisor loaded and checked (executables included).
    const config = resolvedConfigFromEnv() ?? (await configLoader()).loadConfigOrExit(program.opts<{ config?: string }>().config, { executables: true })
    const log = createLogger({ level: config.log.level, pretty: config.log.pretty })
    let hub: { stop(): Promise<void>; httpUrl: string }
    let mqttUrl: string
    try {
      if (config.store.backend === 'nats-kv') {
        // One of a cluster's hubs (cluster-hub.ts): a standby until it holds the leader lease.
        const { startClusterHub } = await import('../cluster-hub.js')
        const member = await startClusterHub(config, log)
        hub = member
        mqttUrl = config.broker.url ?? ''
        // A deposed leader stops: its supervisor starts it again, as a standby. It has nothing to save
        // (what it acknowledged is in the store): its stop is given a bound, then the process goes.
        void member.deposed.then((reason) => {
          log.error({ reason }, 'no longer the leader: stopping')
          const bound = setTimeout(() => {
            log.error({ boundMs: DEPOSED_STOP_BOUND_MS }, 'the deposed hub did not stop in time: exiting')
            process.exit(DEPOSED_EXIT_CODE)
          }, DEPOSED_STOP_BOUND_MS)
          void member.stop().then(() => { clearTimeout(bound); process.exit(DEPOSED_EXIT_CODE) })
        })
      } else {
        const { startHub } = await import('../hub.js')
        const single = await startHub(config, log)
        hub = single
        mqttUrl = single.mqttUrl
      }
    } catch (err) {
      log.fatal({ code: isTrinityError(err) ? err.code : undefined }, (err as Error).message)
      process.exitCode = 1
      return
    }
    let signals = 0
    const shutdown = (signal: string): void => {
      if (++signals > 1) { log.warn('second signal: exiting now'); process.exit(1) }
      log.info({ signal }, 'shutting down')
      void hub.stop().then(() => { log.info('stopped'); process.exit(0) })
    }
    process.on('SIGINT', () => shutdown('SIGINT'))
    process.on('SIGTERM', () => shutdown('SIGTERM'))
    // To a supervisor (or test) that started this process with a channel; the log line is for people.
    // After the listeners: a parent may signal the moment it hears, and without one SIGTERM kills at once.
    announceReady({ service: 'hub', http: hub.httpUrl, mqtt: mqttUrl })
  })

interface ProcessRow { id: string; state: string; process: { state: string; pid: number | null; restarts: number; reason: string | null } | null }

async function instanceRow(url: string, id: string): Promise<ProcessRow> {
  const { instances } = await api<{ instances: ProcessRow[] }>(url, 'GET', '/instances')
  const row = instances.find((i) => i.id === id)
  if (row === undefined) throw new TrinityError('TRINITY_ERR_INSTANCE_NOT_FOUND', `no instance ${JSON.stringify(id)} (known: ${instances.map((i) => i.id).join(', ') || 'none'})`)
  return row
}

program
  .command('restart')
  .description('restart a supervised instance (also clears a crash loop); prints the new run\'s PID once it is running')
  .argument('<id>', 'instance id')
  .option('--no-wait', 'print the hub\'s answer at once, without waiting for the new run')
  .action(async (id: string, options: { wait: boolean }) => {
    const url = await hubUrl(program.opts())
    // The PID before: the hub answers at once, while the old run may still be stopping,
    // so its answer cannot know the new PID; the supervisor's status will.
    const before = options.wait ? (await instanceRow(url, id)).process : null
    const accepted = await request<Record<string, unknown>>(url, 'POST', `/instances/${encodeURIComponent(id)}/restart`)
    if (!options.wait) return void process.stdout.write(`${JSON.stringify(accepted)}\n`)
    const previousPid = before?.pid ?? null
    const previousRestarts = before?.restarts ?? 0
    const deadline = Date.now() + RESTART_WAIT_MS
    // `error` before the supervisor took the request up is the crash loop being cleared, not its outcome.
    let left = before?.state !== 'error'
    for (;;) {
      const row = await instanceRow(url, id)
      const p = row.process
      // A new run: running, with another PID (or, should the OS reuse the PID, more restarts).
      if (p !== null && p.state === 'running' && p.pid !== null && (p.pid !== previousPid || p.restarts > previousRestarts)) {
        return void process.stdout.write(`${JSON.stringify({ id, action: accepted['action'], state: p.state, pid: p.pid, previousPid })}\n`)
      }
      if (p !== null && p.state !== 'error') left = true
      if (p !== null && p.state === 'error' && left) throw new TrinityError('TRINITY_ERR_RESTART_FAILED', `${id} did not come back: ${p.reason ?? 'error'}`)
      if (Date.now() > deadline) throw new TrinityError('TRINITY_ERR_RESTART_FAILED', `${id} not running again after ${RESTART_WAIT_MS / 1000} s (supervisor: ${p?.state ?? 'none'}${p?.reason == null ? '' : `, ${p.reason}`})`)
      await new Promise((r) => setTimeout(r, 200))
    }
  })

program
  .command('pid')
  .description('print the PID of a supervised instance (or hub, bridge) of this hub, e.g. kill -9 $(trinity pid analytics)')
  .argument('<id>', 'instance id')
  .action(async (id: string) => {
    const row = await instanceRow(await hubUrl(program.opts()), id)
    if (row.process?.pid == null) throw new TrinityError('TRINITY_ERR_NOT_SUPERVISED', `${id} has no running process under this hub's supervisor (${row.process === null ? 'not supervised' : row.process.state})`)
    process.stdout.write(`${row.process.pid}\n`)
  })

program
  .command('submit')
  .description('submit a task')
  .argument('<type>', 'task type, e.g. analyze_data')
  .argument('<content>', 'task content (JSON if it parses, else a string)')
  .addOption(new Option('-p, --priority <priority>').choices(PRIORITIES))
  .option('--id <id>', 'idempotency key')
  .option('-w, --wait', 'wait for the task to finish and print its result')
  .option('--timeout <seconds>', 'with --wait: give up after this long', '60')
  .action(async (type: string, content: string, options: { priority?: string; id?: string; wait?: boolean; timeout: string }) => {
    const url = await hubUrl(program.opts())
    let body: unknown = content
    try { body = JSON.parse(content) } catch { /* a plain string */ }
    const accepted = await api<{ id: string; state: string; assigned: string[] }>(url, 'POST', '/task', {
      type, content: body, ...(options.priority === undefined ? {} : { priority: options.priority }), ...(options.id === undefined ? {} : { id: options.id }),
    })
    if (options.wait !== true) {
      process.stdout.write(`${JSON.stringify(accepted)}\n`)
      return
    }
    const deadline = Date.now() + Number(options.timeout) * 1000
    for (;;) {
      // `waiting`: the hub's reason why an unfinished task is not moving (GET /tasks/:id).
      const task = await api<TaskRecord & { waiting?: string }>(url, 'GET', `/tasks/${accepted.id}`)
      if (TERMINAL_TASK_STATES.has(task.state)) {
        process.stdout.write(`${JSON.stringify({ id: task.id, state: task.state, result: task.result, error: task.error }, null, 2)}\n`)
        process.exitCode = task.state === 'completed' ? 0 : 1
        return
      }
      if (Date.now() > deadline) {
        process.stderr.write(`task ${task.id} still ${task.state} after ${options.timeout}s${task.waiting === undefined ? '' : `: ${task.waiting}`}\n`)
        process.exitCode = 1
        return
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  })

program
  .command('answer')
  .description('answer a task that waits for input (needs_input): POST /tasks/:id/respond')
  .argument('<taskId>', 'the task waiting for input (GET /tasks?state=needs_input lists them)')
  .argument('<answer...>', 'the answer: the words as one text, or JSON with --json')
  .option('--json', 'send the answer as JSON (e.g. {"approve":true}) instead of text')
  .option('--instance <id>', 'the leg to answer, when several legs of a fan-out wait')
  .action(async (taskId: string, words: string[], options: { json?: boolean; instance?: string }) => {
    const text = words.join(' ')
    let answer: unknown = text
    if (options.json === true) {
      try { answer = JSON.parse(text) } catch (err) {
        throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `answer: --json needs a JSON value (${(err as Error).message})`)
      }
    }
    const path = `/tasks/${encodeURIComponent(taskId)}/respond`
    const answered = await request(await hubUrl(program.opts()), 'POST', path, { answer, ...(options.instance === undefined ? {} : { instance: options.instance }) })
    process.stdout.write(`${JSON.stringify(answered)}\n`)
  })

program
  .command('send')
  .description('send a message from one instance (or computer) to another; `all` broadcasts')
  .argument('<from>').argument('<to>').argument('<message>')
  .action(async (from: string, to: string, message: string) => {
    const sent = await api(await hubUrl(program.opts()), 'POST', '/send', { from, to, message })
    process.stdout.write(`${JSON.stringify(sent)}\n`)
  })

program
  .command('sync')
  .description('ask the git bridge for a sync round now (POST /sync)')
  .action(async () => {
    const answer = await api(await hubUrl(program.opts()), 'POST', '/sync')
    process.stdout.write(`${JSON.stringify(answer)}\n`)
  })

program
  .command('status')
  .description('the hub summary and every instance')
  .option('--json', 'print JSON')
  .action(async (options: { json?: boolean }) => {
    const url = await hubUrl(program.opts())
    const summary = await api<HubSummary>(url, 'GET', '/')
    const { instances } = await api<InstanceList>(url, 'GET', '/instances')
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify({ hub: summary, instances }, null, 2)}\n`)
      return
    }
    process.stdout.write(`hub ${url}  broker ${summary.broker.mode} (${summary.broker.connected ? 'connected' : 'DISCONNECTED'})  messages ${summary.messages}\n`)
    process.stdout.write(`tasks ${Object.entries(summary.tasks).map(([k, v]) => `${k}=${v}`).join(' ')}\n\n`)
    process.stdout.write(`${'INSTANCE'.padEnd(24)}${'ROLE'.padEnd(22)}${'STATE'.padEnd(10)}${'IN FLIGHT'.padEnd(11)}${'AVG MS'.padEnd(9)}${'PID'.padEnd(9)}RESTARTS\n`)
    for (const i of instances) {
      // PID and restarts come from the supervisor; `-` when none runs the instance.
      const pid = i.process?.pid ?? '-'
      const restarts = i.process?.restarts ?? '-'
      process.stdout.write(`${i.id.padEnd(24)}${i.role.padEnd(22)}${i.state.padEnd(10)}${String(i.inFlight).padEnd(11)}${String(i.responseMs.avg ?? '-').padEnd(9)}${String(pid).padEnd(9)}${restarts}\n`)
    }
  })

program
  .command('tail')
  .description('print bus traffic as `topic payload` lines (default: everything under the prefix)')
  .argument('[topic]', 'MQTT topic filter')
  .option('--mqtt <url>', 'broker URL (default: from the config, or mqtt://127.0.0.1:1883)')
  .option('--username <name>', `bus login, when the broker has broker.auth (default: $${ENV.mqttUsername})`)
  .option('--password <password>', `its password (default: $${ENV.mqttPassword}, with $${ENV.mqttUsername} only)`)
  .action(async (topic: string | undefined, options: { mqtt?: string; username?: string; password?: string }) => {
    let config: Config | undefined
    try {
      config = (await configLoader()).loadConfigFile(configPath(program.opts<{ config?: string }>().config))
    } catch {
      config = undefined
    }
    const url = options.mqtt ?? (config === undefined ? 'mqtt://127.0.0.1:1883' : busUrl(config))
    const login = busLogin(options)
    // Loaded here only: the other commands (`trinity hub` among them) never load MQTT.js.
    const { connectBus } = await import('../net/bus-client.js')
    let client
    try {
      client = await connectBus({ url, reconnectPeriod: 0, connectTimeoutMs: 5000, ...login }, 'first-error')
    } catch (err) {
      // Said once, with the way out; reconnectPeriod 0, so no retry loop behind it.
      if (isLoginRefused(err)) {
        throw new TrinityError('TRINITY_ERR_BUS_LOGIN_REFUSED', `${url} ${login.username === undefined ? 'without a login' : `as ${login.username}`}: ${(err as Error).message} (--username and --password, or $${ENV.mqttUsername} and $${ENV.mqttPassword})`, { cause: err })
      }
      throw new TrinityError('TRINITY_ERR_BUS_UNAVAILABLE', `cannot reach the bus at ${url} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); is the hub running? (trinity start)`)
    }
    // Before the subscribe: the broker sends retained messages right behind
    // its SUBACK, and MQTT.js emits them before the subscribe promise resolves.
    client.on('message', (t, payload) => process.stdout.write(`${t} ${payload.toString('utf8')}\n`))
    const filter = topic ?? topicsFor(config?.hub.topicPrefix).all
    // SUBACK 0x80 [MQTT-3.9.3]: the broker's ACL refused the filter (MQTT.js rejects the subscribe);
    // waiting on it would print nothing, ever.
    const refused = await client.subscribeAsync(filter, { qos: 0 }).then(
      (granted) => granted.some((g) => g.qos === 128),
      (err: Error) => { if (/^Subscribe error/.test(err.message)) return true; throw err },
    )
    if (refused) {
      await client.endAsync()
      throw new TrinityError('TRINITY_ERR_BUS_SUBSCRIBE_REFUSED', `${url}: ${login.username === undefined ? 'without a login' : login.username} may not read ${filter} (SUBACK 0x80); tail with a reader user, or a topic filter the user may read`)
    }
    const stop = (): void => void client.endAsync().then(() => process.exit(0))
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })

program
  .command('mcp')
  .description('an MCP server (stdio; --http: streamable HTTP) that makes the coding agent which starts it an instance: inbox, claim, report, send, submit')
  .option('--id <id>', `instance id (default: $${ENV.instanceId})`)
  .option('--capabilities <types>', 'task types it takes, comma-separated (routes it by capability)')
  .option('--role <role>', 'role for routing (default: the id)')
  .option('--name <name>', 'display name (default: the id)')
  .option('--concurrency <n>', 'tasks the hub sends at once', '1')
  .option('--hub <url>', `hub HTTP URL (default: --url when http, $${ENV.url}, the config, or http://127.0.0.1:8900)`)
  .option('--state-dir <dir>', 'where the durable inbox is kept (default: ~/.trinity/mcp/<id>)')
  .option('--http <port>', 'serve streamable HTTP on 127.0.0.1:<port>/mcp instead of stdio')
  .addHelpText('after', `\n--url (the global option) names the bus when it is mqtt:// (default: $${ENV.mqttUrl}, the config, or mqtt://127.0.0.1:1883).`)
  .action(async (options: Record<string, string | undefined>) => {
    // Imported here: only this command loads the MCP SDK.
    const { runMcp } = await import('../mcp/main.js')
    await runMcp(options, program.opts<{ url?: string; config?: string; token?: string }>())
  })

program
  .command('store')
  .description('the task store of the configured hub: export it, or import an export into an empty one (the move from one SQLite hub to a cluster on nats-kv)')
  .argument('<action>', 'export | import')
  .argument('[file]', 'export: where to write (default: stdout); import: the file to read')
  .action(async (action: string, file: string | undefined) => {
    if (action !== 'export' && action !== 'import') throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `action: expected export or import, got ${JSON.stringify(action)}`)
    if (action === 'import' && file === undefined) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', 'file: import needs the file `trinity store export` wrote')
    const config = (await configLoader()).loadConfigOrExit(program.opts<{ config?: string }>().config)
    const { exportStore, importStore } = await import('../coordinator/store-transfer.js')
    const store = await openConfiguredStore(config, action === 'import')
    try {
      const counts = action === 'export' ? await exportStore(store, file ?? '-') : await importStore(store, file ?? '', { maxMessages: config.messages.maxCount })
      process.stderr.write(`trinity: ${action === 'export' ? 'exported' : 'imported'} ${counts.tasks} tasks, ${counts.messages} messages, ${counts.births} births (store.backend ${config.store.backend})\n`)
    } finally {
      await store.close()
    }
  })

/** The store the config names, opened as a hub would; for an import into nats-kv, only while no hub leads. */
async function openConfiguredStore(config: Config, writing: boolean): Promise<TaskStore> {
  if (config.store.backend === 'sqlite') {
    const { STORE_FILE, SqliteStore } = await import('../coordinator/sqlite-store.js')
    return new SqliteStore({ file: join(config.hub.dataDir, STORE_FILE), sync: config.store.sync })
  }
  const { bucketPrefixFor } = await import('../coordinator/nats-kv.js')
  const prefix = bucketPrefixFor(config.hub.topicPrefix)
  if (writing) {
    const { LeaderLease } = await import('../coordinator/leader-lease.js')
    const lease = await LeaderLease.open({ servers: config.store.urls, login: config.store.login, prefix, ttlMs: config.store.leaseMs, holder: { hub: 'trinity-store-import', url: '' }, replicas: config.store.replicas })
    try {
      const leader = await lease.current()
      if (leader !== undefined) throw new TrinityError('TRINITY_ERR_BAD_REQUEST', `a hub leads this store (${leader.url}): stop every hub before an import`)
    } finally {
      await lease.close()
    }
  }
  const { NatsKvStore } = await import('../coordinator/nats-kv-store.js')
  return NatsKvStore.open({ servers: config.store.urls, login: config.store.login, prefix, replicas: config.store.replicas })
}

program.parseAsync().catch((err: unknown) => {
  // The registry code (docs/errors.md) after the words: what a script matches on.
  const code = isTrinityError(err) || err instanceof HttpError ? err.code : undefined
  process.stderr.write(`trinity: ${(err as Error).message}${code === undefined ? '' : ` (${code})`}\n`)
  process.exit(isTrinityError(err, 'TRINITY_ERR_CONFIG_INVALID') ? EXIT_CONFIG : 1)
})
