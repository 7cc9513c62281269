/**
 * `trinity start` with broker auth and HTTP tokens on (issue #14, medium
 * finding): the supervisor hands each instance the login of the broker user
 * named as it, so all six demo instances come online instead of being
 * refused in a loop ("Bad username or password"); the API answers only with
 * a token, and an instance given a read token in its `env` reads the hub.
 */
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'yaml'
import type { InstanceList, InstanceView } from '../../src/contract/http.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import { ENV } from '../../src/config/env.js'
import { ROOT, testScope, waitFor, writeConfig, type ConfigObject } from '../helpers/hub.js'
import { fleetConfigFile, spawnSupervisor, waitGone } from '../helpers/supervisor.js'

const { dir, cleanups } = testScope()
const ADMIN = 'supervised-admin-token-0123456789'
const READ = 'supervised-read-token-0123456789'

async function get<T>(url: string, path: string, token?: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  return { status: response.status, body: (await response.json()) as T }
}

test('with broker auth on, trinity start brings all six demo instances online with their own logins', async () => {
  const file = await fleetConfigFile(dir.path, 'auth')
  const config = parse(readFileSync(file, 'utf8')) as ConfigObject & { hub: ConfigObject; broker: ConfigObject; instances: ConfigObject[] }
  const ids = config.instances.map((i) => String(i['id']))
  config.hub['auth'] = { tokens: [{ name: 'root', scope: 'admin', token: ADMIN }, { name: 'observatory', scope: 'read', token: READ }] }
  config.broker['auth'] = { enabled: true, users: ids.map((id) => ({ username: id, password: `${id}-bus-secret`, role: 'instance' })) }
  for (const instance of config.instances) {
    if (instance['id'] === 'observatory') instance['env'] = { ...(instance['env'] as ConfigObject), [ENV.token]: READ }
  }
  const sup = await spawnSupervisor(writeConfig(dir.path, config, 'auth.yaml'), { cwd: ROOT })
  cleanups.push(async () => { await sup.stop('SIGKILL'); await waitGone(sup.childPids(), 5000).catch(() => undefined) })

  assert.equal((await get(sup.httpUrl, '/instances')).status, 401, 'the API needs the token')
  let rows: InstanceView[] = []
  await waitFor(async () => {
    rows = (await get<InstanceList>(sup.httpUrl, '/instances', ADMIN)).body.instances
    return rows.length === 6 && rows.every((r) => r.state === 'online' && r.process?.state === 'running')
  }, 60_000, 'six instances online, each process running')
  assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort())
  assert.ok(rows.every((r) => r.process?.restarts === 0), `no instance was refused and restarted: ${JSON.stringify(rows.map((r) => [r.id, r.process?.restarts]))}`)
  const started = sup.records.find((r) => r.msg === 'trinity started')
  assert.equal(started?.['instances'], '6/6')
  assert.equal(sup.records.some((r) => /Bad username or password|not authorized/i.test(JSON.stringify(r))), false, 'nobody was refused by the broker')

  // The monitor reads the hub's summary with the read token from its env.
  const submit = await fetch(`${sup.httpUrl}/task`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'monitor_system', content: '' }) })
  assert.equal(submit.status, 202)
  const { id } = (await submit.json()) as { id: string }
  let task: TaskRecord | undefined
  await waitFor(async () => (task = (await get<TaskRecord>(sup.httpUrl, `/tasks/${id}`, ADMIN)).body).state === 'completed', 60_000, 'monitor_system completed')
  const output = task?.result as { hub: { name?: string } } | undefined
  assert.equal(output?.hub.name, 'trinity', JSON.stringify(task))
  await sup.stop('SIGTERM')
})
