/**
 * The ready signal's schema: the one IPC message a hub, a git bridge or a
 * supervisor sends the process that started it (src/ready.ts sends and
 * reads it).
 */
import Type, { type Static } from 'typebox'
import { SupervisedChild } from './supervisor.js'

export const READY_VERSION = 1

const base = {
  type: Type.Literal('trinity.ready'),
  version: Type.Literal(READY_VERSION),
  /** The ready process's own pid: not the parent's child when a wrapper (a shell, strace) sits between. */
  pid: Type.Integer(),
}
const urls = { http: Type.String(), mqtt: Type.String() }
export const ReadySignal = Type.Union([
  Type.Object({ ...base, service: Type.Literal('hub'), ...urls }),
  Type.Object({ ...base, service: Type.Literal('bridge') }),
  Type.Object({
    ...base,
    service: Type.Literal('supervisor'),
    /** The hub's URLs, as the hub's own signal gave them. */
    ...urls,
    /** The lifeline's pid (src/supervisor/lifeline.ts): what reaps the children if the supervisor is killed. */
    lifeline: Type.Union([Type.Integer(), Type.Null()]),
    /** Every child as it stands at ready: an instance that could not start is here, not running, with its reason. */
    children: Type.Array(SupervisedChild),
  }),
])
export type ReadySignal = Static<typeof ReadySignal>
