/** Every error code in the registry is documented in docs/errors.md. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ERRORS, TrinityError } from '../src/errors.js'
import { ROOT } from './helpers/hub.js'

test('each error code is documented with its HTTP status', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8')
  for (const [code, { status }] of Object.entries(ERRORS)) {
    assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} is missing from docs/errors.md`)
  }
})

test('a TrinityError carries its code, status and field', () => {
  const err = new TrinityError('TRINITY_ERR_TASK_TYPE_UNKNOWN', '"x"', { field: 'type' })
  assert.equal(err.statusCode, 422)
  assert.deepEqual(err.toJSON(), { code: 'TRINITY_ERR_TASK_TYPE_UNKNOWN', message: 'no route for task type: "x"', field: 'type' })
})
