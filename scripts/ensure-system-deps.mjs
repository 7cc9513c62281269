#!/usr/bin/env node
// Installs the system packages the test suite needs when they are missing:
// mosquitto (the external-broker conformance run) and its command-line
// clients, git, strace (the fsync-order test), paho-mqtt for Python (a client nobody
// here wrote), Chromium (the dashboard tests drive it with playwright-core,
// which downloads no browser of its own), and unshare, nsenter, ip and curl
// (test/user-path runs npm start in a network namespace of its own), and openssl
// (test/tls.test.ts makes its certificate), and nats-server (test/conformance/nats*.test.ts start a
// 3-node cluster of it). Uses apt-get as root (Debian); otherwise says what to install.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readlinkSync } from 'node:fs'

const needs = [
  { bin: '/usr/sbin/mosquitto', pkg: 'mosquitto' },
  { bin: '/usr/bin/mosquitto_sub', pkg: 'mosquitto-clients' },
  { bin: '/usr/bin/mosquitto_pub', pkg: 'mosquitto-clients' },
  { bin: '/usr/bin/git', pkg: 'git' },
  { bin: '/usr/bin/chromium', pkg: 'chromium' },
  { bin: '/usr/bin/strace', pkg: 'strace' },
  { bin: '/usr/lib/python3/dist-packages/paho/mqtt/client.py', pkg: 'python3-paho-mqtt' },
  // test/user-path: npm start in its own network namespace, reached with curl from inside it
  { bin: '/usr/bin/unshare', pkg: 'util-linux' },
  { bin: '/usr/bin/nsenter', pkg: 'util-linux' },
  { bin: '/usr/sbin/ip', pkg: 'iproute2' },
  { bin: '/usr/bin/curl', pkg: 'curl' },
  // test/tls.test.ts: a self-signed certificate made with `openssl req`
  { bin: '/usr/bin/openssl', pkg: 'openssl' },
  // test/conformance/nats*.test.ts: the suite and a node loss on a 3-node nats-server cluster with JetStream
  { bin: '/usr/sbin/nats-server', pkg: 'nats-server' },
]
// `--bench`: also the peers `npm run bench` measures Trinity against (nats-server, the other, is above).
if (process.argv.includes('--bench')) {
  needs.push({ bin: '/usr/bin/redis-server', pkg: 'redis-server' })
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
// and `npm start` needs :1883 for the embedded broker. Stop that service by its own
// means (never by process name: that would kill every other mosquitto on the machine,
// the test suite's included): its init script or unit, else the PID in its pidfile.
const stopped = ['service mosquitto stop', 'systemctl stop mosquitto'].some((line) => spawnSync('sh', ['-c', line], { stdio: 'ignore' }).status === 0)
if (!stopped) {
  const pidfile = '/run/mosquitto/mosquitto.pid'
  const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8').trim()) : NaN
  let exe = ''
  try { exe = readlinkSync(`/proc/${pid}/exe`) } catch { /* not running */ }
  if (Number.isInteger(pid) && pid > 1 && exe === '/usr/sbin/mosquitto') process.kill(pid, 'SIGTERM')
}
// Likewise redis-server's own service on :6379: the bench starts its own servers on free ports.
if (missing.includes('redis-server')) spawnSync('sh', ['-c', 'service redis-server stop || systemctl stop redis-server'], { stdio: 'ignore' })
