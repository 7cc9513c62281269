/**
 * `npm run bench`: every figure beside a baseline measured in the same run,
 * because these machines are noisy. Sizes scale with BENCH_SCALE (default 1).
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { benchBridge } from './bridge.js'
import { benchHub, type Row } from './hub.js'
import { benchMcp } from './mcp.js'
import { PEER_KEYS, benchPeers, peersTable } from './peers.js'
import { benchSupervisor } from './supervisor.js'

const scale = Number(process.env['BENCH_SCALE'] ?? '1')

function table(title: string, rows: Row[]): string {
  const header = ['measure', 'Trinity', 'baseline', 'baseline value', 'vs baseline']
  const lines = rows.map((r) => [r.name, r.value, r.baselineName, r.baseline, r.ratio])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`
  return [`\n### ${title}`, fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n')
}

// BENCH_ONLY=peers,hub,supervisor,broker,bridge,mcp runs some sections only (default: all).
const only = new Set((process.env['BENCH_ONLY'] ?? 'peers,hub,supervisor,broker,bridge,mcp').split(','))

console.log(`# trinity bench, ${new Date().toISOString()}, node ${process.version}, scale ${scale}, load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`)
if (only.has('peers')) {
  // BENCH_PEERS=trinity-normal,bullmq-everysec,… picks systems (default: all of PEER_KEYS).
  const systems = process.env['BENCH_PEERS']?.split(',') ?? PEER_KEYS
  const results = await benchPeers({ burst: Math.round(20_000 * scale), sequential: Math.round(1000 * scale), rounds: 2, only: systems })
  console.log(`\n### peers: durable tasks, one harness (${Math.round(1000 * scale)} sequential, then a burst; 2 interleaved rounds; Trinity ÷ it: Trinity normal's burst rate over the row's)`)
  console.log(peersTable(results))
}
if (only.has('hub')) console.log(table('hub core (hub in its own process, durability on, no-op instance)', await benchHub({ latencyN: Math.round(1000 * scale), throughputN: Math.round(20_000 * scale) })))
if (only.has('supervisor')) console.log(table('supervisor: `trinity start` with the reference fleet', await benchSupervisor({ runs: 3, kills: Math.max(3, Math.round(5 * scale)) })))
// Broker latency runs each broker in its own process; it prints its own table.
if (only.has('broker')) {
  console.log('\n### broker: QoS 1 round trips by client shape')
  const latency = fileURLToPath(new URL('./broker-latency.js', import.meta.url))
  process.stdout.write(execFileSync(process.execPath, [latency, String(Math.round(500 * scale))], { encoding: 'utf8' }))
}
if (only.has('bridge')) console.log(table('git bridge (real git, bare remote on local disk, the bus in this process)', await benchBridge({ k: Math.round(1000 * scale), history: Math.round(100_000 * scale) })))
if (only.has('mcp')) console.log(table('trinity mcp: assignment → notification at an MCP host (SDK Client over stdio), sequential', await benchMcp({ n: Math.round(300 * scale) })))
