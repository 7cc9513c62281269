#!/usr/bin/env node
// Installs the system packages the test suite needs when they are missing:
// mosquitto (the external-broker conformance run) and its command-line
// clients, git, strace (the fsync-order test), and Chromium (the dashboard tests drive it with playwright-core,
// which downloads no browser of its own). Uses apt-get as root (Debian); otherwise says what to install.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const needs = [
  { bin: '/usr/sbin/mosquitto', pkg: 'mosquitto' },
  { bin: '/usr/bin/mosquitto_sub', pkg: 'mosquitto-clients' },
  { bin: '/usr/bin/mosquitto_pub', pkg: 'mosquitto-clients' },
  { bin: '/usr/bin/git', pkg: 'git' },
  { bin: '/usr/bin/chromium', pkg: 'chromium' },
  { bin: '/usr/bin/strace', pkg: 'strace' },
  { bin: '/usr/lib/python3/dist-packages/paho/mqtt/client.py', pkg: 'python3-paho-mqtt' },
]
// `--bench`: also the peers `npm run bench` measures Trinity against.
if (process.argv.includes('--bench')) {
  needs.push({ bin: '/usr/bin/redis-server', pkg: 'redis-server' }, { bin: '/usr/sbin/nats-server', pkg: 'nats-server' })
}
const missing = [...new Set(needs.filter((n) => !existsSync(n.bin)).map((n) => n.pkg))]
if (missing.length === 0) process.exit(0)

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
if (!isRoot || spawnSync('apt-get', ['--version']).status !== 0) {
  console.error(`missing system packages: ${missing.join(' ')}\ninstall them (e.g. sudo apt-get install -y ${missing.join(' ')}) and run again`)
  process.exit(1)
}
console.error(`installing system packages: ${missing.join(' ')}`)
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env })
// The package starts a system mosquitto on :1883; tests start their own on free ports,
// and `npm start` needs :1883 for the embedded broker.
spawnSync('sh', ['-c', 'service mosquitto stop || systemctl stop mosquitto || pkill -x mosquitto'], { stdio: 'ignore' })
// Likewise redis-server's own service on :6379: the bench starts its own servers on free ports.
if (missing.includes('redis-server')) spawnSync('sh', ['-c', 'service redis-server stop || systemctl stop redis-server'], { stdio: 'ignore' })
