/** The files below `dir` whose names `include` accepts (declaration files never), for the tests that read the sources. */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

export function sourceFiles(dir: string, include: RegExp = /\.ts$/): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path, include))
    else if (include.test(name) && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}
