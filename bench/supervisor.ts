/**
 * Supervisor benchmarks (`trinity start` with the reference fleet), each
 * beside a baseline measured in the same run:
 * - cold start: spawn of the supervisor → all six instances online in
 *   GET /instances, beside starting seven bare `node -e 0` processes at once
 *   (the floor for launching that many Node processes here); the median of
 *   the runs, the first of which also runs the git bridge;
 * - idle RSS of supervisor + hub + bridge (first run, sync on), beside as
 *   many idle `node -e` processes;
 * - restart latency: SIGKILL of an instance → online again with a new PID,
 *   restart backoff set to 100 ms, beside one bare `node -e 0` start.
 */
import { join } from 'node:path'
import { bareRepo, syncSection } from '../test/bridge/helpers.js'
import { ROOT, http, tempDir } from '../test/helpers/hub.js'
import { fleetConfigFile, spawnSupervisor, type SupervisorProcess } from '../test/helpers/supervisor.js'
import { bareNodeStartMs, idleNodeRss, percentile, rssMb, type Row } from './proc.js'
import type { InstanceList, InstanceView } from '../src/contract/http.js'


async function instances(sup: SupervisorProcess): Promise<InstanceView[]> {
  return (await http<InstanceList>(sup.httpUrl, 'GET', '/instances')).body.instances
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
}

const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 0.5)

export async function benchSupervisor(options: { runs: number; kills: number }): Promise<Row[]> {
  const dir = tempDir('trinity-bench-sup-')
  const rows: Row[] = []
  try {
    const starts: number[] = []
    const floors: number[] = []
    let rssRow: Row | undefined
    for (let run = 0; run < options.runs; run++) {
      // The first run also syncs (a bare repo on local disk), so the bridge is in the RSS figure.
      const sync = run === 0 ? { sync: syncSection({ computer: '1', peers: ['2'], remote: bareRepo(dir.path), workdir: join(dir.path, 'sync'), interval: '1h' }) } : {}
      const file = await fleetConfigFile(dir.path, `cold-${run}`, {
        ...sync,
        log: { level: 'info', pretty: false },
        supervisor: { restart: { base: '100ms', jitter: 0, resetAfter: '200ms' }, crashLoop: { restarts: 1000, window: '1m' } },
      })
      const t0 = performance.now()
      const sup = await spawnSupervisor(file, { cwd: ROOT })
      try {
        await until(async () => (await instances(sup)).filter((i) => i.state === 'online').length === 6)
        starts.push(performance.now() - t0)
        floors.push(await bareNodeStartMs(7))
        if (run === 0) {
          await new Promise((r) => setTimeout(r, 3000))
          const hubPid = sup.records.find((r) => r.service === 'hub' && r.msg === 'child starting')?.childPid ?? 0
          const bridgePid = sup.records.find((r) => r.service === 'bridge' && r.msg === 'child starting')?.childPid
          const pids = [sup.child.pid ?? 0, hubPid, ...(bridgePid === undefined ? [] : [bridgePid])]
          const total = pids.reduce((sum, pid) => sum + rssMb(pid), 0)
          const idle = await idleNodeRss()
          rssRow = {
            name: `idle RSS, supervisor + hub${bridgePid === undefined ? '' : ' + bridge'} (${pids.map((p) => rssMb(p).toFixed(1)).join(' + ')})`,
            value: `${total.toFixed(1)} MB`, baselineName: `${pids.length} × idle \`node -e\``, baseline: `${(idle * pids.length).toFixed(1)} MB`, ratio: `${(total / (idle * pids.length)).toFixed(2)}x`,
          }
          const restarts: number[] = []
          for (let k = 0; k < options.kills; k++) {
            const before = (await instances(sup)).find((i) => i.id === 'analytics')?.process?.pid
            if (typeof before !== 'number') throw new Error('analytics has no pid')
            const killedAt = performance.now()
            process.kill(before, 'SIGKILL')
            await until(async () => {
              const row = (await instances(sup)).find((i) => i.id === 'analytics')
              return row?.state === 'online' && row.process?.pid !== before && row.process?.pid !== null
            })
            restarts.push(performance.now() - killedAt)
            await new Promise((r) => setTimeout(r, 300))
          }
          const floor = await bareNodeStartMs(1)
          const p50 = median(restarts)
          rows.push({ name: `restart after SIGKILL → online, p50 of ${options.kills} (100 ms backoff included)`, value: `${p50.toFixed(0)} ms`, baselineName: 'one bare `node -e 0`', baseline: `${floor.toFixed(0)} ms`, ratio: `+${(p50 - floor).toFixed(0)} ms` })
        }
      } finally {
        await sup.stop('SIGTERM')
      }
    }
    const start = median(starts)
    const floor = median(floors)
    rows.unshift({ name: `cold start → six online, median of ${options.runs}`, value: `${start.toFixed(0)} ms`, baselineName: 'seven bare `node -e 0` at once', baseline: `${floor.toFixed(0)} ms`, ratio: `${(start / floor).toFixed(1)}x` })
    if (rssRow !== undefined) rows.splice(1, 0, rssRow)
  } finally {
    dir.remove()
  }
  return rows
}

