/**
 * A taken port fails fast with an error that names it, instead of hanging.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { isTrinityError } from '../../src/errors.js'
import { startBroker } from './helpers.js'

test('starting on a port in use rejects with host:port in the message', async (t) => {
  const squatter = createServer()
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())))
  const address = squatter.address()
  assert.ok(typeof address === 'object' && address !== null)

  await assert.rejects(startBroker(t, { port: address.port }), (error: unknown) => {
    assert.ok(isTrinityError(error, 'TRINITY_ERR_PORT_IN_USE'))
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${address.port}\\b`))
    assert.match(error.message, /EADDRINUSE/)
    return true
  })
})

test('a second broker on the first one\'s port is refused the same way', async (t) => {
  const first = await startBroker(t)
  await assert.rejects(startBroker(t, { port: first.port }), new RegExp(`:${first.port}\\b`))
})
