/**
 * `trinity` client commands against a hub with tokens (issue #14): refused
 * with the hub's 401 without one, working with `--token` or TRINITY_TOKEN,
 * and a too-small scope's 403 says which scope is needed. Real processes.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { ENV } from '../src/config/env.js'
import type { Hub } from '../src/hub.js'
import { TestInstance } from './helpers/instance.js'
import { runCli, type CliRun } from './helpers/cli.js'
import { startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'

const ADMIN = 'cli-admin-token-0123456789'
const READ = 'cli-read-token-0123456789'
const dir = tempDir()
let hub: Hub
let c1: TestInstance
before(async () => {
  hub = await startTestHub(await testConfig(dir.path, { hub: { auth: { tokens: [
    { name: 'root', scope: 'admin', token: ADMIN },
    { name: 'viewer', scope: 'read', token: READ },
  ] } } }))
  c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1' })
  await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 30_000, 'c1 online')
})
after(async () => {
  await c1.close()
  await hub.stop()
  dir.remove()
})

/** `trinity …` against the hub, with no token but what `env` adds. */
function run(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli([...args, '--url', hub.httpUrl], { cwd: dir.path, env })
}

test('without a token every client command is refused with the hub\'s 401', async () => {
  for (const args of [['status'], ['submit', 'general', 'x'], ['send', 'root', 'c1', 'hi'], ['sync'], ['restart', 'c1', '--no-wait'], ['pid', 'c1']]) {
    const r = await run(args)
    assert.equal(r.code, 1, `${args.join(' ')}: ${JSON.stringify(r)}`)
    assert.match(r.stderr, /401 a valid bearer token is required.*\(TRINITY_ERR_UNAUTHORIZED\)/, args.join(' '))
  }
})

test('--token and TRINITY_TOKEN are sent as the bearer token', async () => {
  const status = await run(['status', '--json', '--token', ADMIN])
  assert.equal(status.code, 0, status.stderr)
  assert.ok((JSON.parse(status.stdout) as { instances: { id: string }[] }).instances.some((i) => i.id === 'c1'))
  const submitted = await run(['submit', 'general', 'by env', '--wait'], { [ENV.token]: ADMIN })
  assert.equal(submitted.code, 0, submitted.stderr)
  assert.equal((JSON.parse(submitted.stdout) as { state: string }).state, 'completed')
  const sent = await run(['send', 'root', 'c1', 'hello'], { [ENV.token]: ADMIN })
  assert.equal(sent.code, 0, sent.stderr)
})

test('a read token may look but not submit: the 403 names the scope needed', async () => {
  assert.equal((await run(['status', '--token', READ])).code, 0)
  const r = await run(['submit', 'general', 'x', '--token', READ])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /403 the token does not allow this: POST \/task needs scope submit, token viewer has read \(TRINITY_ERR_FORBIDDEN\)/)
})
