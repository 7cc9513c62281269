/**
 * Where an `adapter: exec` instance's program is, found as execvp(3) would
 * find it: a name with a `/` is a path (relative to the instance's `cwd`),
 * any other name is looked up in the PATH the command will run with. Checked
 * when `trinity hub` / `trinity start` load the config, so a misspelt program
 * stops the start with exit code 2 instead of failing every task it is sent.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, isAbsolute, join, resolve } from 'node:path'

/** The resolved path of `command`, or null when there is no executable file by that name. */
export function findExecutable(command: string, options: { cwd: string; path: string | undefined }): string | null {
  if (command.includes('/')) return isExecutableFile(resolve(options.cwd, command)) ? resolve(options.cwd, command) : null
  for (const dir of (options.path ?? '').split(delimiter)) {
    // An empty PATH entry means the current directory, as for execvp.
    const base = dir === '' ? options.cwd : isAbsolute(dir) ? dir : resolve(options.cwd, dir)
    const candidate = join(base, command)
    if (isExecutableFile(candidate)) return candidate
  }
  return null
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}
