/**
 * The agent tests' shared fixture: one hub in this process with the seed routes
 * plus the test's own, agents drained after the file, and a wait for a task to end.
 */
import { after, before } from 'node:test'
import type { Agent } from '../../src/agent/index.js'
import type { Route } from '../../src/config/schema.js'
import { SEED_ROUTES } from '../../src/config/defaults.js'
import type { TaskRecord } from '../../src/contract/payloads/task.js'
import type { Hub } from '../../src/hub.js'
import { http, startTestHub, tempDir, testConfig, waitFor } from './hub.js'

export interface AgentHub {
  /** Set once the file's `before` has run. */
  hub: Hub
  /** The file's scratch folder (the hub's data is in it). */
  readonly dir: { path: string }
  /** Agents to drain after the file. */
  readonly agents: Agent[]
  /** The task once it is completed, failed or dead. */
  finished: (id: string) => Promise<TaskRecord>
}

export function agentHub(routes: Record<string, Partial<Route> & { targets: string[] }>): AgentHub {
  const dir = tempDir()
  const scope = {
    hub: undefined as unknown as Hub,
    dir,
    agents: [] as Agent[],
    async finished(id: string): Promise<TaskRecord> {
      let task: TaskRecord | undefined
      await waitFor(async () => {
        task = (await http<TaskRecord>(scope.hub.httpUrl, 'GET', `/tasks/${id}`)).body
        return ['completed', 'failed', 'dead'].includes(task.state)
      }, 30_000, `task ${id}`)
      return task as TaskRecord
    },
  }
  before(async () => {
    scope.hub = await startTestHub(await testConfig(dir.path, { routes: { ...SEED_ROUTES, ...routes } }))
  })
  after(async () => {
    for (const agent of scope.agents) await agent.drain().catch(() => undefined)
    await scope.hub?.stop()
    dir.remove()
  })
  return scope
}
