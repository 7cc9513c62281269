/**
 * How the supervisor judges a child ready, per kind (STYLE.md: a child is
 * ready only after it says so):
 *
 * - the hub and the git bridge: their ready signal on the IPC channel
 *   (src/ready.ts); the hub's carries its URLs, known only then when a port
 *   is 0;
 * - a bus instance: its birth (`online` status) reaching the bus, from the
 *   run the supervisor started;
 * - an `adapter: http` instance, which has no bus connection: its health URL
 *   answering 2xx.
 *
 * These functions only judge; the supervisor calls `markReady()`.
 */
import type { InstanceConfig } from '../config/schema.js'
import { InstanceStatus } from '../contract/payloads/instance.js'
import { decode } from '../contract/payloads/validate.js'
import { httpRequestTo } from '../net/http-request.js'
import { readySignalFrom, type ReadySignal } from '../ready.js'
import type { Child } from './child.js'

const HEALTH_POLL_MS = 200

/** The hub's or the bridge's ready signal, when `message` from its channel is one and the child is still starting. */
export function readySignal(child: Child, message: unknown): ReadySignal | undefined {
  if (child.state !== 'starting' || child.spec.kind === 'instance') return undefined
  return readySignalFrom(message, child.spec.kind)
}

/**
 * True when `payload` on the instance's status topic is a birth from the run
 * we started: live, or retained but newer than the run (it may have come up
 * before the supervisor's client subscribed). The session is the agent's
 * connect time, on this machine's clock.
 */
export function isBirthOfRun(child: Child, payload: Buffer, retained: boolean): boolean {
  if (payload.length === 0) return false
  const decoded = decode(InstanceStatus, payload)
  return decoded.ok && decoded.value.state === 'online' && (!retained || decoded.value.session >= (child.startedAt ?? Infinity))
}

/**
 * For an `adapter: http` instance: resolves true once its health URL answers
 * 2xx while the same run is still starting, false when that run is over (or
 * there is nothing to poll). A bus instance may serve /health before it
 * reaches the bus, so for those only the birth counts.
 */
export async function healthUrlAnswers(child: Child, instance: InstanceConfig | undefined): Promise<boolean> {
  if (instance?.adapter !== 'http') return false
  const url = instance.healthUrl ?? (instance.url === undefined ? undefined : `${instance.url.replace(/\/$/, '')}/health`)
  if (url === undefined) return false
  const run = child.startedAt
  while (child.state === 'starting' && child.startedAt === run) {
    // node:http, not fetch: fetch refuses ports such as 6000 (src/net/http-request.ts).
    const ok = await httpRequestTo(url, { timeoutMs: 1000 }).then((r) => r.ok, () => false)
    if (ok && child.startedAt === run) return true
    await new Promise((r) => setTimeout(r, HEALTH_POLL_MS))
  }
  return false
}
