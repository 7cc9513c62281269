/**
 * A bus client's login: what the caller was given (options, CLI flags), else
 * the environment, ENV.mqttUsername and ENV.mqttPassword (what the supervisor
 * sets for each instance with a broker user, and what a user exports). The
 * agent SDK, `trinity mcp` (both through instance-connection.ts) and
 * `trinity tail` take it this one way.
 */
import { ENV } from '../config/env.js'

export interface BusLogin {
  readonly username?: string
  readonly password?: string
}

/**
 * The given login, else the environment's; none when neither names a user.
 * A given username never takes the environment's password: that belongs to
 * the environment's user.
 */
export function busLogin(given: { readonly username?: string | undefined; readonly password?: string | undefined }, env: NodeJS.ProcessEnv = process.env): BusLogin {
  const username = given.username ?? env[ENV.mqttUsername]
  if (username === undefined || username === '') return {}
  return { username, password: given.password ?? (given.username === undefined ? env[ENV.mqttPassword] : undefined) ?? '' }
}

const CONNACK_BAD_LOGIN = 4
const CONNACK_NOT_AUTHORIZED = 5

/**
 * Whether a first connect failed because the broker refused the login: CONNACK
 * return code 4 (bad user name or password) or 5 (not authorized) [MQTT-3.2.2-3],
 * which MQTT.js reports as the error's `code`. Not worth a retry, unlike a
 * broker that is not up yet.
 */
export function isLoginRefused(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === CONNACK_BAD_LOGIN || code === CONNACK_NOT_AUTHORIZED
}
