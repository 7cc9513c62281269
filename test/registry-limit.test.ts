/**
 * `limits.maxJoinedInstances` (issue #14): births on distinct new ids join
 * the registry only up to the limit; the rest are refused on `hub/errors`,
 * the registry stays bounded, known ids keep their entry and configured
 * instances always join.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { HubError } from '../src/contract/payloads/hub.js'
import type { InstanceStatus } from '../src/contract/payloads/instance.js'
import { topicsFor } from '../src/contract/topics.js'
import { parseConfig } from '../src/config/load.js'
import { startTestHub, testConfig, testScope, waitFor, watchHubErrors } from './helpers/hub.js'

const { dir, cleanups } = testScope()
const topics = topicsFor('trinity')
const LIMIT = 20
const BIRTHS = 3000

const birth = (session: number): string => JSON.stringify({ state: 'online', session, capabilities: ['general'] } satisfies InstanceStatus)

test('limits.maxJoinedInstances: 1000 by default, configurable', () => {
  assert.equal(parseConfig('', 'x.yaml').limits.maxJoinedInstances, 1000)
  assert.equal(parseConfig('limits:\n  maxJoinedInstances: 5\n', 'x.yaml').limits.maxJoinedInstances, 5)
})

test('thousands of births on distinct ids: the registry stays at the limit, the rest are refused with a reason', async () => {
  const hub = await startTestHub(await testConfig(dir.path, {
    limits: { maxJoinedInstances: LIMIT },
    instances: [{ id: 'configured', capabilities: ['general'] }],
    // Heartbeat-less joined instances must not be expired or probed away while the test counts them.
    health: { interval: '60s', timeout: '60s', forgetAfter: null },
  }))
  cleanups.push(() => hub.stop())
  const { client, errors } = await watchHubErrors(hub.mqttUrl, cleanups)

  for (let i = 0; i < BIRTHS; i++) await client.publishAsync(topics.instanceStatus(`joiner-${i}`), birth(1), { qos: 1 })
  const full = (): HubError[] => errors.filter((e) => e.code === 'TRINITY_ERR_REGISTRY_FULL')
  await waitFor(() => full().length === BIRTHS - LIMIT, 60_000, `${BIRTHS - LIMIT} refusals (have ${full().length})`)
  const joined = hub.coordinator.registry.all().filter((i) => i.source === 'joined')
  assert.equal(joined.length, LIMIT)
  assert.deepEqual(joined.map((i) => i.id).sort(), Array.from({ length: LIMIT }, (_, i) => `joiner-${i}`).sort())
  assert.equal(full()[0]?.topic, topics.instanceStatus(`joiner-${LIMIT}`))
  assert.match(full()[0]?.reason ?? '', /joiner-20 is not in instances\[\] and 20 joined instances are known already \(limits\.maxJoinedInstances\)/)

  // A known joined id is still heard (a new session is applied, not refused), and the configured one joins.
  const before = full().length
  await client.publishAsync(topics.instanceStatus('joiner-3'), birth(2), { qos: 1 })
  await client.publishAsync(topics.instanceStatus('configured'), birth(1), { qos: 1 })
  await waitFor(() => hub.coordinator.registry.get('configured')?.state === 'online', 30_000, 'the configured instance online')
  await waitFor(() => hub.coordinator.registry.get('joiner-3')?.session === 2, 30_000, 'joiner-3 on its new session')
  assert.equal(full().length, before)

  // Forgetting one makes room for exactly one more.
  hub.coordinator.registry.forget('joiner-0')
  await client.publishAsync(topics.instanceStatus('late-a'), birth(1), { qos: 1 })
  await client.publishAsync(topics.instanceStatus('late-b'), birth(1), { qos: 1 })
  await waitFor(() => full().length === before + 1, 30_000, 'late-b refused')
  assert.equal(full().at(-1)?.topic, topics.instanceStatus('late-b'))
  assert.equal(hub.coordinator.registry.get('late-a')?.state, 'online')
  assert.equal(hub.coordinator.registry.get('late-b'), undefined)
  assert.equal(hub.coordinator.registry.all().filter((i) => i.source === 'joined').length, LIMIT)
})
