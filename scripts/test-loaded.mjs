#!/usr/bin/env node
// `npm run test:loaded`: the whole test command twice in a row while two busy-loop
// processes keep both cores of a 2-core machine at 100%, to show the suite holds no
// timing assumptions (issue #10). Extra arguments go to `npm test`, e.g.
// `npm run test:loaded -- dist/test/layering.test.js` to try it on one small file.
// Exits non-zero if either run failed; prints both runs' closing counts. The busy
// loops are stopped on every way out (end, failure, a signal), and each also exits
// by itself if this script dies (its parent changes).
import { spawn } from 'node:child_process'

const BUSY = 'const parent = process.ppid; for (;;) { for (let i = 0; i < 5e7; i++); if (process.ppid !== parent) process.exit(0) }'
const busy = [0, 1].map(() => spawn(process.execPath, ['-e', BUSY], { stdio: 'ignore' }))
const stopBusy = () => { for (const b of busy) if (b.exitCode === null && b.signalCode === null) b.kill('SIGKILL') }
process.on('exit', stopBusy)
let current
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    current?.kill(signal)
    stopBusy()
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[signal])
  })
}

const COUNTS = /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) (\S+)$/

function runOnce(n) {
  return new Promise((resolve) => {
    console.log(`\n== test:loaded run ${n} of 2 (busy loops: ${busy.map((b) => b.pid).join(', ')}) ==`)
    const counts = {}
    let rest = ''
    const onData = (target) => (chunk) => {
      target.write(chunk)
      rest += chunk.toString()
      const lines = rest.split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        const m = COUNTS.exec(line.trim())
        if (m) counts[m[1]] = m[2]
      }
    }
    current = spawn('npm', ['test', '--', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'pipe'] })
    current.stdout.on('data', onData(process.stdout))
    current.stderr.on('data', onData(process.stderr))
    current.once('exit', (code, signal) => resolve({ n, code, signal, counts }))
  })
}

const runs = []
for (const n of [1, 2]) runs.push(await runOnce(n))
stopBusy()
console.log('\n== test:loaded: closing counts ==')
for (const r of runs) {
  const c = r.counts
  console.log(`run ${r.n}: exit ${r.code ?? r.signal}  tests ${c.tests ?? '?'}  pass ${c.pass ?? '?'}  fail ${c.fail ?? '?'}  cancelled ${c.cancelled ?? '?'}  skipped ${c.skipped ?? '?'}  duration_ms ${c.duration_ms ?? '?'}`)
}
process.exit(runs.every((r) => r.code === 0) ? 0 : 1)
