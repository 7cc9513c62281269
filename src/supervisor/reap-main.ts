/**
 * `node reap-main.js RUN_ID…`: the lifeline's last act once the supervisor
 * has died (lifeline.ts). It kills what still carries each run's tag, the
 * `setsid` grandchildren its group kill cannot reach, with the same reaper
 * the supervisor uses when a run ends (run-reaper.ts).
 */
import { reapRun } from './run-reaper.js'

for (const runId of process.argv.slice(2)) reapRun(runId)
