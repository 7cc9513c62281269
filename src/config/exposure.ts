/**
 * An exposed hub is safe by default (issue #14, finding 6): the checks a
 * schema cannot make about who can reach the hub, run by load.ts with the
 * other semantic checks, so a config that would expose an open API or bus is
 * refused at start (`file:line:col`, exit code 2) rather than logged.
 *
 * - Each HTTP token names its secret exactly one way, and `tokenEnv` is set.
 * - `hub.host` beyond loopback needs HTTP tokens, and (its port also serves
 *   MQTT over WebSocket) broker auth or `broker.websocket: false`.
 * - The embedded broker's `broker.host` beyond loopback needs broker auth.
 * - Broker auth on needs HTTP tokens: else the API still lets anyone submit,
 *   cancel and read everything the bus protects.
 * `hub.allowInsecure: true` switches the exposure rules off, never the token checks.
 */
import type { RawConfig } from './schema.js'

export interface ExposureProblem {
  readonly path: (string | number)[]
  readonly expected: string
}

/** 127.0.0.0/8, ::1 and localhost: only this machine reaches a server bound there. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare)
}

const INSECURE = 'or set hub.allowInsecure: true to accept that'

export function exposureProblems(raw: RawConfig, env: NodeJS.ProcessEnv): ExposureProblem[] {
  const problems: ExposureProblem[] = []
  const tokens = raw.hub?.auth?.tokens ?? []
  const names = new Set<string>()
  tokens.forEach((token, index) => {
    const forms = [token.token, token.tokenHash, token.tokenEnv].filter((f) => f !== undefined).length
    if (forms !== 1) problems.push({ path: ['hub', 'auth', 'tokens', index], expected: `expected exactly one of token, tokenHash, tokenEnv, got ${forms}` })
    if (token.tokenEnv !== undefined && (env[token.tokenEnv] ?? '') === '') {
      problems.push({ path: ['hub', 'auth', 'tokens', index, 'tokenEnv'], expected: `expected the environment variable ${token.tokenEnv} to hold the token, it is unset or empty` })
    }
    if (names.has(token.name)) problems.push({ path: ['hub', 'auth', 'tokens', index, 'name'], expected: `expected a unique name, "${token.name}" appears twice` })
    names.add(token.name)
  })
  if (raw.hub?.allowInsecure === true) return problems

  const hubHost = raw.hub?.host ?? '127.0.0.1'
  const embedded = (raw.broker?.mode ?? 'embedded') === 'embedded'
  const brokerAuth = raw.broker?.auth?.enabled === true
  if (!isLoopbackHost(hubHost)) {
    if (tokens.length === 0) {
      problems.push({ path: ['hub', 'host'], expected: `expected a loopback address (127.0.0.1, ::1, localhost) while hub.auth.tokens is empty: anyone who reaches ${hubHost} could submit, cancel and read every task; add tokens (README, Security), ${INSECURE}` })
    }
    if (embedded && (raw.broker?.websocket ?? true) && !brokerAuth) {
      problems.push({ path: ['hub', 'host'], expected: `expected broker.auth.enabled (or broker.websocket: false) when hub.host is ${hubHost}: the MQTT WebSocket /mqtt on this port would let anyone onto the bus, ${INSECURE}` })
    }
  }
  const brokerHost = raw.broker?.host ?? '127.0.0.1'
  if (embedded && !isLoopbackHost(brokerHost) && !brokerAuth) {
    problems.push({ path: ['broker', 'host'], expected: `expected a loopback address (127.0.0.1, ::1, localhost) while broker.auth.enabled is false: anyone who reaches ${brokerHost} could publish and read every topic; turn broker auth on, ${INSECURE}` })
  }
  if (brokerAuth && tokens.length === 0) {
    problems.push({ path: ['broker', 'auth', 'enabled'], expected: `expected hub.auth.tokens as well: with broker auth on, the HTTP API would still let anyone submit, cancel and read what the bus protects, ${INSECURE}` })
  }
  return problems
}
