/**
 * `trinity mcp` against a hub whose API needs a bearer token (hub.auth.tokens,
 * issue #14): with $TRINITY_TOKEN its tools read and submit; without it they
 * answer the hub's TRINITY_ERR_UNAUTHORIZED as a tool error, not a crash.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ENV } from '../../src/config/env.js'
import { startTestHub, testConfig, testScope } from '../helpers/hub.js'
import { errorText, startMcp } from '../helpers/mcp.js'

const { dir, cleanups } = testScope()
const TOKEN = 'mcp-submit-token-0123456789abcdef'

test('with $TRINITY_TOKEN the tools reach a hub with tokens; without it they are refused with UNAUTHORIZED', async () => {
  const hub = await startTestHub(await testConfig(join(dir.path, 'hub'), {
    hub: { auth: { tokens: [{ name: 'agent', scope: 'submit', token: TOKEN }] } },
  }))
  cleanups.push(() => hub.stop())

  const anonymous = await startMcp({ id: 'anon', busUrl: hub.mqttUrl, hubUrl: hub.httpUrl, stateDir: join(dir.path, 'anon'), cwd: dir.path })
  cleanups.push(() => anonymous.close())
  const refused = await anonymous.call('trinity_status')
  assert.equal(refused.isError, true)
  assert.match(errorText(refused), /TRINITY_ERR_UNAUTHORIZED/)

  const agent = await startMcp({ id: 'agent', busUrl: hub.mqttUrl, hubUrl: hub.httpUrl, stateDir: join(dir.path, 'agent'), cwd: dir.path, env: { [ENV.token]: TOKEN } })
  cleanups.push(() => agent.close())
  const status = await agent.result<{ instances: { id: string }[]; queue: Record<string, number> }>('trinity_status')
  assert.equal(typeof status.queue['queued'], 'number')
  const submitted = await agent.result<{ id: string; state: string }>('trinity_submit', { type: 'general', content: 'with a token' })
  assert.ok(typeof submitted.id === 'string' && submitted.id !== '', JSON.stringify(submitted))
})
