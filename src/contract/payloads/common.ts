/**
 * Wire payloads of the topic contract are TypeBox schemas and their types,
 * one module per topic group in this folder (task, inbox, instance, message,
 * hub, bridge, supervisor; decoding in validate.ts). The same schemas validate
 * MQTT payloads in the coordinator, HTTP bodies in Fastify routes, and are
 * printed into docs/topics.md. Unions are keyed on one field (`kind` or
 * `state`) so consumers can switch exhaustively.
 *
 * This module: the schemas every group builds on (ids, task types,
 * priorities, counts), from the dependency-free patterns and lists of
 * ../constants.ts.
 */
import Type from 'typebox'
import { ID_PATTERN, PRIORITIES, TASK_TYPE_PATTERN, type Priority as PriorityName } from '../constants.js'

export const Id = Type.String({ pattern: ID_PATTERN, description: 'letters, digits, `.`, `_`, `-`; at most 64' })

export type Priority = PriorityName
export const Priority = Type.Enum([...PRIORITIES])

export const TaskType = Type.String({ pattern: TASK_TYPE_PATTERN, description: 'snake_case task type' })

/** A count: a non-negative integer. */
export const Count = Type.Integer({ minimum: 0 })
