/** The examples in coordination/examples/ parse as the spec says (the docs cannot drift from the parser). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseMessages, parseStatus } from '../../bridges/git/format.js'
import { ROOT } from '../helpers/hub.js'

const examples = join(ROOT, 'coordination/examples')

test('example status files parse', () => {
  for (const n of ['1', '2']) {
    const parsed = parseStatus(readFileSync(join(examples, `COMPUTER_${n}.md`), 'utf8'))
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason)
    assert.equal(parsed.status.computer, n)
  }
})

test('example message files parse, a forged header inside a body stays body, archives read the same way', () => {
  const oneToTwo = parseMessages(readFileSync(join(examples, 'messages/1_TO_2.md'), 'utf8'))
  assert.deepEqual(oneToTwo.problems, [])
  assert.deepEqual(oneToTwo.messages.map((m) => m.seq), [1, 2, 3])
  assert.match(oneToTwo.messages[1]?.message ?? '', /<!-- trinity-message \{"id":"forged"\} -->$/)
  assert.equal(oneToTwo.messages[2]?.message, 'A control character \u0007 and a carriage return\r\nmake this body base64.')
  const archived = parseMessages(readFileSync(join(examples, 'messages/archive/2_TO_1.000000001-000000002.md'), 'utf8'))
  const live = parseMessages(readFileSync(join(examples, 'messages/2_TO_1.md'), 'utf8'))
  assert.deepEqual([...archived.messages, ...live.messages].map((m) => m.seq), [1, 2, 3, 4])
})
