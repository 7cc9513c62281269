/** The hub with broker auth on: its own clients get in, instances only with their credentials, and only under their own topics. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { TestInstance } from './helpers/instance.js'
import { http, startTestHub, tempDir, testConfig, waitFor } from './helpers/hub.js'
import { topicsFor } from '../src/contract/topics.js'
import { clientIds } from '../src/net/client-ids.js'

const dir = tempDir()
const READ_TOKEN = 'hub-auth-read-token-0123456789'
after(() => dir.remove())

test('with auth enabled, an instance with its credentials works end to end and cannot speak for another', async () => {
  const hub = await startTestHub(await testConfig(dir.path, {
    // With broker auth on, the HTTP API needs tokens too (config refuses it without: issue #14).
    hub: { auth: { tokens: [{ name: 'reader', scope: 'read', token: READ_TOKEN }] } },
    broker: { auth: { enabled: true, users: [
      { username: 'c1', password: 'c1-secret', role: 'instance' },
      { username: 'ops', password: 'ops-secret', role: 'client' },
    ] } },
  }))
  const t = topicsFor()
  try {
    await assert.rejects(mqtt.connectAsync(hub.mqttUrl, { username: 'c1', password: 'wrong', reconnectPeriod: 0 }))
    await assert.rejects(mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 }))
    const c1 = await TestInstance.start({ url: hub.mqttUrl, id: 'c1', username: 'c1', password: 'c1-secret' })
    try {
      await waitFor(() => hub.coordinator.registry.get('c1')?.state === 'online', 5000, 'c1 online')
      // c1 may not forge araya's birth: the hub never hears of araya.
      await c1.client.publishAsync(t.instanceStatus('araya'), JSON.stringify({ state: 'online', session: 1 }), { qos: 1 }).catch(() => undefined)
      // A client-role user may submit over MQTT; the task reaches c1.
      const ops = await mqtt.connectAsync(hub.mqttUrl, { username: 'ops', password: 'ops-secret' })
      await ops.publishAsync(t.taskSubmit, JSON.stringify({ id: 'auth-1', type: 'general', content: 'x' }), { qos: 1 })
      await ops.endAsync()
      assert.equal((await http(hub.httpUrl, 'GET', '/tasks/auth-1')).status, 401, 'the API is closed without the token')
      const read = async (): Promise<string | undefined> =>
        ((await (await fetch(`${hub.httpUrl}/tasks/auth-1`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })).json()) as { state?: string }).state
      await waitFor(async () => (await read()) === 'completed', 5000, 'completed')
      assert.equal(hub.coordinator.registry.get('araya'), undefined)
    } finally {
      await c1.close()
    }
  } finally {
    await hub.stop()
  }
})

test("issue #14 finding 4: an instance user reconnecting as the coordinator is refused 20 times, and 200 QoS 1 submissions are all stored", async () => {
  const hub = await startTestHub(await testConfig(dir.path, {
    hub: { dataDir: `${dir.path}/finding-4`, auth: { tokens: [{ name: 'reader', scope: 'read', token: READ_TOKEN }] } },
    broker: { auth: { enabled: true, users: [
      { username: 'c1', password: 'c1-secret', role: 'instance' },
      { username: 'root', password: 'root-secret', role: 'admin' },
    ] } },
  }))
  const t = topicsFor()
  try {
    const admin = await mqtt.connectAsync(hub.mqttUrl, { username: 'root', password: 'root-secret', reconnectPeriod: 0 })
    try {
      let refused = 0
      let submitted = 0
      const coordinatorDrops: number[] = []
      for (let round = 0; round < 20; round++) {
        const attempt = mqtt.connectAsync(hub.mqttUrl, { username: 'c1', password: 'c1-secret', clientId: clientIds.coordinator(t.prefix), reconnectPeriod: 0, connectTimeout: 30_000 })
          .then(async (intruder) => { await intruder.endAsync(); return 0 }, (error: Error & { code?: number }) => error.code)
        const batch = Array.from({ length: 10 }, () => admin.publishAsync(t.taskSubmit, JSON.stringify({ id: `f4-${submitted++}`, type: 'general', content: 'x' }), { qos: 1 }))
        const [code] = await Promise.all([attempt, ...batch])
        if (code === 5) refused++
        if (!hub.coordinator.connected) coordinatorDrops.push(round)
      }
      assert.equal(refused, 20, 'every CONNECT as the coordinator is refused with CONNACK 5 (not authorized)')
      assert.deepEqual(coordinatorDrops, [], 'the coordinator kept its connection')
      const stored = async (): Promise<number> => {
        const response = await fetch(`${hub.httpUrl}/tasks?limit=1000`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })
        const list = (await response.json()) as { tasks: { id: string }[] }
        return list.tasks.filter((task) => task.id.startsWith('f4-')).length
      }
      await waitFor(async () => (await stored()) === 200, 60_000, 'all 200 acknowledged submissions stored')
      assert.equal(await stored(), 200)
    } finally {
      await admin.endAsync()
    }
  } finally {
    await hub.stop()
  }
})
