/**
 * `trinity mcp --http PORT`: the MCP server over streamable HTTP at
 * `http://127.0.0.1:PORT/mcp` instead of stdio, for hosts that connect to a
 * URL. Stateful: each initialize opens a session (the `mcp-session-id`
 * header) with its own Server over the one instance; a session's claims are
 * kept alive until it closes (DELETE, or the server stops).
 * Loopback only: the tools act as this instance, and nothing here checks who calls.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { McpInstance } from './instance.js'
import { createMcpServer } from './server.js'

const MCP_PATH = '/mcp'

export interface McpHttpServer {
  readonly url: string
  close(): Promise<void>
}

export async function serveHttp(instance: McpInstance, port: number, log: (line: string) => void): Promise<McpHttpServer> {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  const http: HttpServer = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path !== MCP_PATH) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'TRINITY_ERR_NOT_FOUND', message: `not found: the MCP endpoint is ${MCP_PATH}` } }))
      return
    }
    const header = req.headers['mcp-session-id']
    const id = Array.isArray(header) ? header[0] : header
    const existing = id === undefined ? undefined : sessions.get(id)
    if (existing !== undefined) {
      existing.handleRequest(req, res).catch((err: Error) => log(`mcp http: ${err.message}`))
      return
    }
    // No session yet: the transport accepts only an initialize here (400 otherwise; 404 for an unknown session id).
    const owner = randomUUID()
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => owner,
      onsessioninitialized: (sessionId) => void sessions.set(sessionId, transport),
    })
    const { server, close } = createMcpServer(instance, owner, log)
    transport.onclose = () => {
      sessions.delete(owner)
      close()
      instance.releaseOwner(owner)
    }
    server.connect(transport)
      .then(() => transport.handleRequest(req, res))
      // Refused (not an initialize): nothing will use this server again.
      .then(() => { if (transport.sessionId === undefined) { close(); void transport.close() } })
      .catch((err: Error) => log(`mcp http: ${err.message}`))
  })
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(port, '127.0.0.1', () => resolve())
  })
  const bound = (http.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${bound}${MCP_PATH}`,
    async close() {
      for (const transport of [...sessions.values()]) await transport.close().catch(() => undefined)
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}
