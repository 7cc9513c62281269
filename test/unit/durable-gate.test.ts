/**
 * The durable gate (src/coordinator/durable-gate.ts, issue #13): what says
 * "stored" leaves only once the store vouches for every write before it, in
 * the order it was asked for; when the store cannot vouch, nothing held
 * leaves, ever. The store here is the interface's `durable()` alone, answered
 * by hand, so each moment of a replicated store's confirmation can be chosen;
 * the JetStream KV store's own tests run it against the real cluster.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DurableGate } from '../../src/coordinator/durable-gate.js'
import { silentLogger } from '../../src/log.js'

/** A store whose writes are confirmed when the test says: `write()` makes one pending, `confirm`/`refuse` answer all pending so far. */
function handStore() {
  let pending: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | undefined
  return {
    durable: () => pending?.promise,
    write() {
      if (pending !== undefined) return
      let resolve!: () => void
      let reject!: (e: Error) => void
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
      pending = { promise, resolve, reject }
    },
    confirm() { const p = pending; pending = undefined; p?.resolve() },
    refuse(reason: Error) { const p = pending; pending = undefined; p?.reject(reason) },
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

test('with nothing pending (the SQLite store), an effect runs at once, and settled() is undefined', () => {
  const gate = new DurableGate({ durable: () => undefined }, silentLogger(), () => assert.fail('no failure'))
  const seen: string[] = []
  gate.run(() => seen.push('a'))
  assert.deepEqual(seen, ['a'], 'synchronously, so a throw would reach the caller as before')
  assert.throws(() => gate.run(() => { throw new Error('boom') }), /boom/)
  assert.equal(gate.settled(), undefined)
})

test('effects wait for the writes made before them, and leave in the order asked, even past a later confirmation', async () => {
  const store = handStore()
  const gate = new DurableGate(store, silentLogger(), () => assert.fail('no failure'))
  const seen: string[] = []
  store.write()
  gate.run(() => seen.push('ack 1'))
  gate.run(() => seen.push('event 1'))
  await turn()
  assert.equal(seen.length, 0, 'nothing leaves before the store confirms')
  const first = store.durable()
  store.confirm()
  // A new write after the first confirmation: what is asked from now on waits for it.
  store.write()
  gate.run(() => seen.push('ack 2'))
  await first
  await turn()
  assert.deepEqual(seen, ['ack 1', 'event 1'])
  // With nothing pending in the store, an effect still waits behind the held ones.
  const settled = gate.settled()
  assert.ok(settled !== undefined, 'something is held: settled() is a promise')
  store.confirm()
  await settled
  assert.deepEqual(seen, ['ack 1', 'event 1', 'ack 2'])
  await turn()
  assert.equal(gate.settled(), undefined, 'nothing held any more')
  gate.run(() => seen.push('now'))
  assert.deepEqual(seen.at(-1), 'now')
})

test('a store that cannot vouch: nothing held leaves, later effects neither, each refusal is told, the failure once', async () => {
  const store = handStore()
  const failures: Error[] = []
  const gate = new DurableGate(store, silentLogger(), (reason) => failures.push(reason))
  const seen: string[] = []
  const refused: string[] = []
  store.write()
  gate.run(() => seen.push('ack'), (reason) => refused.push(`ack: ${reason.message}`))
  gate.run(() => seen.push('event'))
  const waiting = gate.settled()
  assert.ok(waiting !== undefined)
  store.refuse(new Error('fenced by a newer leader'))
  await assert.rejects(waiting, /fenced by a newer leader/)
  await turn()
  assert.equal(seen.length, 0)
  assert.deepEqual(refused, ['ack: fenced by a newer leader'])
  gate.run(() => seen.push('later'), (reason) => refused.push(`later: ${reason.message}`))
  assert.equal(seen.length, 0, 'nothing after the failure either')
  assert.deepEqual(refused.at(-1), 'later: fenced by a newer leader')
  await assert.rejects(gate.settled() ?? Promise.resolve(), /fenced/)
  assert.equal(failures.length, 1)
})

test('a held effect that throws is logged, and the ones after it still leave', async () => {
  const store = handStore()
  const errors: unknown[] = []
  const log = { error: (obj: unknown) => { errors.push(obj) } }
  const gate = new DurableGate(store, log, () => assert.fail('no failure'))
  const seen: string[] = []
  store.write()
  gate.run(() => { throw new Error('publish failed') })
  gate.run(() => seen.push('next'))
  store.confirm()
  await gate.settled()
  assert.deepEqual(seen, ['next'])
  assert.equal(errors.length, 1)
})
