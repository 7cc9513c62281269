#!/usr/bin/env node
// `npm test`'s last step: node --test on the compiled form of every test/**/*.test.ts
// (the list comes from the sources, so a stale file in dist/test could not run even if
// one were left), or on the files given as arguments (`npm test -- dist/test/x.test.js`).
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.test.ts') ? [path] : []
  })
}

const given = process.argv.slice(2)
const tests = given.length > 0 ? given : sources(join(ROOT, 'test')).map((f) => join('dist', relative(ROOT, f)).replace(/\.ts$/, '.js')).sort()
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...tests], { cwd: ROOT, stdio: 'inherit' })
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
child.once('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
