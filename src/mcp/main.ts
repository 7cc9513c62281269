/**
 * `trinity mcp`: the door for coding agents (issue #11). The agent's MCP host
 * starts this process; it makes that agent a Trinity instance (bus-session.ts),
 * keeps its inbox on disk (journal.ts) and offers tools and wake-up pushes
 * (server.ts). Loaded by the CLI with a dynamic import, so neither the hub
 * nor any other command loads the MCP SDK.
 *
 * stdout is the MCP channel (stdio mode): nothing else may write to it, so
 * console.log goes to stderr here and every log line is written to stderr.
 *
 * Start order: the journal, then the MCP transport (a host gives a server a
 * few seconds to answer initialize; the journal's unread entries are there at
 * once), then the bus, waited for while it refuses connections (the hub may
 * start after the agent). Ends on SIGTERM / SIGINT, or when the host closes
 * stdin: says offline, disconnects, closes the journal.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { BusSession } from './bus-session.js'
import { HubApi } from './hub-api.js'
import { serveHttp } from './http-transport.js'
import { McpInstance } from './instance.js'
import { Journal } from './journal.js'
import { resolveMcpOptions, type GlobalFlags, type McpFlags } from './options.js'
import { createMcpServer } from './server.js'

/** While the broker refuses connections, keep trying this long (a day: the host may outlive a hub restart). */
const WAIT_FOR_BUS_MS = 24 * 60 * 60 * 1000
/** The one MCP session of stdio mode. */
const STDIO_OWNER = 'stdio'

const log = (line: string): void => void process.stderr.write(`trinity mcp: ${line}\n`)

export async function runMcp(flags: McpFlags, global: GlobalFlags): Promise<void> {
  console.log = console.error
  const options = resolveMcpOptions(flags, global)
  const journal = new Journal(options.stateDir)
  let instance: McpInstance | undefined
  const bus = new BusSession(
    {
      id: options.id, url: options.busUrl, prefix: options.prefix, username: options.username, password: options.password,
      capabilities: options.capabilities, role: options.role, name: options.name, concurrency: options.concurrency, waitForBusMs: WAIT_FOR_BUS_MS,
    },
    journal,
    { arrived: (entry) => instance?.arrived(entry), warn: log, inFlight: () => instance?.inFlight ?? 0 },
  )
  instance = new McpInstance(options.id, journal, bus, new HubApi(options.hubUrl, options.token))
  const live = instance

  let closeTransport: () => Promise<void>
  if (options.httpPort === undefined) {
    const { server, close } = createMcpServer(live, STDIO_OWNER, log)
    await server.connect(new StdioServerTransport())
    closeTransport = async () => { close(); await server.close() }
  } else {
    const http = await serveHttp(live, options.httpPort, log)
    log(`MCP over streamable HTTP at ${http.url}`)
    closeTransport = () => http.close()
  }

  let stopping: Promise<void> | undefined
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log(`stopping (${why})`)
      live.stop()
      await closeTransport().catch(() => undefined)
      await bus.close().catch(() => undefined)
      journal.closeDb()
    })()
    return stopping
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal).then(() => process.exit(0)))
  if (options.httpPort === undefined) {
    // The host closed our stdin: the session is over (the SDK's stdio transport does not notice by itself).
    process.stdin.once('end', () => void stop('stdin closed').then(() => process.exit(0)))
  }

  try {
    await bus.open()
    log(`${options.id} on the bus at ${options.busUrl} (hub ${options.hubUrl}, state ${options.stateDir})`)
  } catch (err) {
    log(`cannot join the bus: ${(err as Error).message}; the tools that need it will say so`)
  }
}
