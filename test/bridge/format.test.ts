/** The coordination file format: bodies round-trip exactly whatever they contain, and damage is contained. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  archiveFileName, parseArchiveName, parseMessages, parseStatus, serializeMessage, serializeMessageFile, serializeStatus, type FileMessage,
} from '../../bridges/git/format.js'

const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/)
/** Bodies made to break structure: the format's own markers, fences, front matter, headings, any Unicode, lone surrogates, CR, NUL. */
const hostile = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('`', '~', '-', '#', '\n', '\r', '<', '!', '>', ' ', '{', '}', '"', '\u0000', '\ud800', '\udfff', 'é', '𝄞', '\u202e') }),
  fc.array(fc.constantFrom('---', '```', '````text', '<!-- trinity-message {"id":"x","seq":1,"from":"a","to":"b","ts":1,"encoding":"text","lines":1} -->', '<!-- /trinity-message -->', '### #1 · a → b', '# Computer 1', ''), { maxLength: 12 }).map((lines) => lines.join('\n')),
)

const message = fc.record({
  id, seq: fc.integer({ min: 1, max: 1_000_000 }), from: id, to: id,
  fromInstance: fc.option(id, { nil: undefined }), instance: fc.option(id, { nil: undefined }),
  topic: fc.option(fc.string(), { nil: undefined }),
  ts: fc.integer({ min: 0, max: 4_102_444_800_000 }), message: hostile,
}).map((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined)) as unknown as FileMessage)

test('any body round-trips exactly, alone and among others (fast-check)', () => {
  fc.assert(fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), (messages) => {
    const text = serializeMessageFile('a', 'b', messages)
    const parsed = parseMessages(text)
    assert.deepEqual(parsed.problems, [])
    assert.deepEqual(parsed.messages, messages)
  }), { numRuns: 500 })
})

test('plain text stays readable in the file; only bodies a text file cannot carry are base64', () => {
  const plain = serializeMessage({ id: 'm1', seq: 1, from: '1', to: '2', ts: 0, message: 'hello\n## not a heading\n```js\nx\n```' })
  assert.match(plain, /\n## not a heading\n/)
  assert.match(plain, /^````text$/m, 'a fence longer than any backtick run in the body')
  const binary = serializeMessage({ id: 'm2', seq: 2, from: '1', to: '2', ts: 0, message: 'a\r\nb\u0000' })
  assert.match(binary, /"encoding":"base64"/)
  assert.deepEqual(parseMessages(binary).messages[0]?.message, 'a\r\nb\u0000')
})

test('a file converted to CRLF line endings (a Windows checkout) parses to the same messages', () => {
  const messages: FileMessage[] = [
    { id: 'w1', seq: 1, from: '1', to: '2', ts: 1, message: 'two\nlines' },
    { id: 'w2', seq: 2, from: '1', to: '2', ts: 2, message: 'a\r\nb' },
  ]
  const text = serializeMessageFile('1', '2', messages)
  assert.deepEqual(parseMessages(text.replaceAll('\n', '\r\n')).messages, messages)
})

test('a damaged block is reported with its line and the others still parse', () => {
  const a: FileMessage = { id: 'a1', seq: 1, from: '1', to: '2', ts: 1, message: 'one' }
  const b: FileMessage = { id: 'a2', seq: 2, from: '1', to: '2', ts: 2, message: 'two\nlines' }
  const c: FileMessage = { id: 'a3', seq: 3, from: '1', to: '2', ts: 3, message: 'three' }
  const text = serializeMessageFile('1', '2', [a, b, c]).replace('two\nlines\n', 'two\n') // a hand edit dropped a line
  const parsed = parseMessages(text)
  assert.deepEqual(parsed.messages.map((m) => m.id), ['a1', 'a3'])
  assert.equal(parsed.problems.length, 1)
  assert.match(parsed.problems[0]?.reason ?? '', /closing fence/)
})

test('status files round-trip their front matter and reject what is not one', () => {
  const status = {
    computer: '2', state: 'WORKING' as const, updated: '2026-11-25T18:00:00.000Z', lastSync: '2026-11-25T18:00:00.000Z', queueDepth: 3,
    instances: [{ id: 'araya', health: 'online' }, { id: 'c1', health: 'offline' }], read: { '1': { id: 'x-1', seq: 7 } },
  }
  const text = serializeStatus(status)
  assert.match(text, /\| araya \| online \|/)
  assert.deepEqual(parseStatus(text), { ok: true, status })
  assert.equal(parseStatus('# no front matter').ok, false)
  assert.equal(parseStatus('---\ncomputer: 2\nstate: NAPPING\n---\n').ok, false)
})

test('archive names carry their seq range and parse back', () => {
  const name = archiveFileName('1', '2', 1, 500).split('/').pop() ?? ''
  assert.equal(name, '1_TO_2.000000001-000000500.md')
  assert.deepEqual(parseArchiveName(name), { from: '1', to: '2', firstSeq: 1, lastSeq: 500 })
  assert.equal(parseArchiveName('1_TO_2.md'), undefined)
})
