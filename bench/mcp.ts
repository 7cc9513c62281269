/**
 * `trinity mcp` push latency: from the moment the hub's assignment is on the
 * bus (a bench client subscribed to the instance's inbox sees the frame) to
 * the moment an MCP host holds the `notifications/claude/channel` for it
 * (the SDK's Client over stdio, `trinity mcp` as its child process, as a
 * coding agent's host runs it). Beside it, the raw QoS 1 hop through the
 * same broker in the same run (bench/hub.ts `rawHop`): what is left is the
 * journal write (fsynced before the PUBACK), the MCP framing and one pipe.
 * Sequential tasks; the bench completes each on the instance's report topic,
 * so the instance (concurrency 1) takes the next.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { InboxFrame } from '../src/contract/payloads/inbox.js'
import { topicsFor } from '../src/contract/topics.js'
import { connectBus } from '../src/net/bus-client.js'
import { CLI, spawnHub, tempDir, testConfig, writeConfig } from '../test/helpers/hub.js'
import { rawHop } from './hub.js'
import { percentile, type Row } from './proc.js'

const topics = topicsFor()
const ID = 'bench-mcp'

export async function benchMcp(options: { n: number }): Promise<Row[]> {
  const dir = tempDir('trinity-bench-mcp-')
  const config = await testConfig(dir.path, { log: { level: 'warn' }, health: { interval: '30s', timeout: '5s' }, tasks: { lease: '60s' } })
  const hub = await spawnHub(writeConfig(dir.path, config))
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp', '--id', ID, '--capabilities', 'code_review', '--url', hub.mqttUrl, '--hub', hub.httpUrl, '--state-dir', `${dir.path}/mcp`],
    cwd: dir.path, stderr: 'ignore',
  })
  const host = new Client({ name: 'trinity-bench-host', version: '1.0.0' }, { capabilities: {} })
  const pushed = new Map<string, () => void>()
  host.fallbackNotificationHandler = async (notification) => {
    const meta = (notification.params as { meta?: Record<string, string> } | undefined)?.meta
    if (notification.method === 'notifications/claude/channel' && meta?.['taskId'] !== undefined) pushed.get(meta['taskId'])?.()
  }
  const observer = await connectBus({ url: hub.mqttUrl, clean: true }, 'first-error')
  const assigned = new Map<string, (frame: Extract<InboxFrame, { kind: 'task' }>) => void>()
  observer.on('message', (_topic, payload) => {
    const frame = JSON.parse(payload.toString()) as InboxFrame
    if (frame.kind === 'task') assigned.get(frame.task.id)?.(frame)
  })
  try {
    await host.connect(transport)
    await observer.subscribeAsync(topics.instanceInbox(ID), { qos: 1 })
    // Online once the hub routes code_review to it (capability routing): a submission is accepted.
    for (const deadline = Date.now() + 60_000; ;) {
      const instances = await fetch(`${hub.httpUrl}/instances`).then((r) => r.json() as Promise<{ instances: { id: string; state: string }[] }>)
      if (instances.instances.some((i) => i.id === ID && i.state === 'online')) break
      if (Date.now() > deadline) throw new Error('trinity mcp did not come online')
      await new Promise((r) => setTimeout(r, 100))
    }
    const warm = Math.min(20, options.n)
    const samples: number[] = []
    for (let i = 0; i < options.n + warm; i++) {
      const id = `mcp-${i}`
      let atAssignment = 0
      const onBus = new Promise<Extract<InboxFrame, { kind: 'task' }>>((resolve) => assigned.set(id, (frame) => { atAssignment = performance.now(); resolve(frame) }))
      const atHost = new Promise<number>((resolve) => pushed.set(id, () => resolve(performance.now())))
      await observer.publishAsync(topics.taskSubmit, JSON.stringify({ id, type: 'code_review', content: `review ${i}` }), { qos: 1 })
      const frame = await onBus
      const notified = await atHost
      if (i >= warm) samples.push(notified - atAssignment)
      assigned.delete(id)
      pushed.delete(id)
      await observer.publishAsync(topics.instanceReport(ID), JSON.stringify({ taskId: id, state: 'completed', leaseToken: frame.leaseToken, output: null }), { qos: 1 })
      // The hub frees the slot when it has stored the completion: the next assignment waits for it otherwise.
    }
    samples.sort((a, b) => a - b)
    const raw = await rawHop(hub.mqttUrl, options.n)
    const p50 = percentile(samples, 0.5)
    const p99 = percentile(samples, 0.99)
    return [
      { name: 'assignment → MCP channel push p50', value: `${p50.toFixed(3)} ms`, baselineName: 'raw QoS 1 hop p50', baseline: `${raw.p50.toFixed(3)} ms`, ratio: `+${(p50 - raw.p50).toFixed(3)} ms` },
      { name: 'assignment → MCP channel push p99', value: `${p99.toFixed(3)} ms`, baselineName: 'raw QoS 1 hop p99', baseline: `${raw.p99.toFixed(3)} ms`, ratio: `+${(p99 - raw.p99).toFixed(3)} ms` },
    ]
  } finally {
    await host.close().catch(() => undefined)
    await observer.endAsync().catch(() => undefined)
    await hub.kill('SIGTERM')
    dir.remove()
  }
}
