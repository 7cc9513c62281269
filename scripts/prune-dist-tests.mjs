#!/usr/bin/env node
// Before `npm test` builds: compiled tests whose source is gone (a test removed or
// renamed) would still run from dist/test and pass or fail on code that no longer
// exists. Deletes every file under dist/test that no file under test/ compiles to.
//
// Why not `rm -rf dist/test`: tsc is incremental (dist/.tsbuildinfo) and does not
// check that its outputs still exist, so it would skip emitting the tests it thinks
// are current. For the same reason, when a test source's output is missing, the
// build info goes too, and tsc emits everything again.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SOURCE = join(ROOT, 'test')
const OUT = join(ROOT, 'dist/test')
const BUILD_INFO = join(ROOT, 'dist/.tsbuildinfo')

function files(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : [path]
  })
}

/** What tsc emits for one source under test/, relative to test/. */
const outputsOf = (rel) => (rel.endsWith('.ts') && !rel.endsWith('.d.ts') ? [rel.replace(/\.ts$/, '.js'), rel.replace(/\.ts$/, '.js.map')] : [])

const sources = files(SOURCE).map((f) => relative(SOURCE, f))
const expected = new Set(sources.flatMap(outputsOf))
let removed = 0
for (const file of files(OUT)) {
  if (!expected.has(relative(OUT, file))) { rmSync(file); removed++ }
}
if (removed > 0) console.error(`removed ${removed} stale compiled test file(s) from dist/test`)
const missing = sources.filter((rel) => outputsOf(rel).length > 0 && !existsSync(join(OUT, outputsOf(rel)[0])))
if (missing.length > 0 && existsSync(BUILD_INFO)) {
  rmSync(BUILD_INFO)
  console.error(`dist/test lacks ${missing.length} compiled test file(s): full rebuild`)
}
