/**
 * The git bridge as a process: `node dist/bridges/git/main.js [--config FILE]`.
 * This is the command the supervisor launches when `sync.enabled` is true.
 *
 * Config: --config, else TRINITY_CONFIG, else config/trinity.yaml (the hub's
 * loader: an invalid file prints file:line:col problems and exits 2). Bus:
 * TRINITY_MQTT_URL, else the config's broker; TRINITY_MQTT_USERNAME and
 * TRINITY_MQTT_PASSWORD when the broker wants them. Logs JSON lines with
 * `service: "bridge"`; `bridge ready` once on the bus with the clone ready, and
 * then the ready signal (src/ready.ts) to a parent that gave it a channel.
 * SIGTERM / SIGINT: finish the current round (at most 30 s), exit 0.
 */
import { parseArgs } from 'node:util'
import { EXIT_CONFIG, loadConfigOrExit } from '../../src/config/load.js'
import { createLogger } from '../../src/log.js'
import { announceReady } from '../../src/ready.js'
import { startBridge } from './bridge.js'

const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true })
const config = loadConfigOrExit(values.config)
const log = createLogger({ level: config.log.level, pretty: config.log.pretty }).child({ service: 'bridge' })
if (config.sync.remote === undefined) {
  process.stderr.write(`${config.source}: sync.remote: expected the shared repository's URL or path\n`)
  process.exit(EXIT_CONFIG)
}
if (!config.sync.enabled) log.warn('sync.enabled is false in the config; running the bridge anyway, as asked')

let bridge
try {
  bridge = await startBridge(config, { log })
} catch (err) {
  log.fatal({ err: (err as Error).message }, 'bridge failed to start')
  process.exit(1)
}
let signals = 0
const shutdown = (signal: string): void => {
  if (++signals > 1) { log.warn('second signal: exiting now'); process.exit(1) }
  log.info({ signal }, 'stopping: finishing the current round')
  void bridge.stop(30_000).then(() => { log.info('stopped'); process.exit(0) })
}
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGTERM', () => shutdown('SIGTERM'))
// Only now: a parent may signal the moment it hears, and without a listener SIGTERM kills at once.
announceReady({ service: 'bridge' })
