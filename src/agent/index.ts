/**
 * The agent SDK's public entry point. Everything a worker needs; nothing
 * else under src/agent is meant to be imported from outside.
 */
export { NonRetryableError, connectAgent } from './agent.js'
export type { Agent, AgentOptions, TaskContext, TaskHandler } from './agent.js'
export type { Priority } from '../contract/constants.js'
export type { Message } from '../contract/payloads/message.js'
export { TrinityError } from '../errors.js'
