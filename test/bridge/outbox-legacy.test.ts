/** An outbox written before the one message shape (text in `body`) still delivers its text after an upgrade. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Outbox } from '../../bridges/git/outbox.js'
import { testScope } from '../helpers/hub.js'

const { dir } = testScope()

test('a queued entry logged with `body` reads back as `message`', () => {
  const file = join(dir.path, 'outbox.log')
  writeFileSync(file, `${JSON.stringify({ op: 'add', entry: { id: 'old-1', to: '2', body: 'from the old bridge', ts: 1, seq: null, state: 'queued' } })}\n`)
  const outbox = new Outbox(file)
  try {
    const [entry] = outbox.queuedFor('2')
    assert.deepEqual([entry?.id, entry?.message, 'body' in (entry ?? {})], ['old-1', 'from the old bridge', false])
  } finally {
    outbox.close()
  }
})
