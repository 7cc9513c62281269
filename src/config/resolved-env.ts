/**
 * The resolved config, handed from the supervisor to its children in the
 * environment. The supervisor has already parsed and validated the YAML; a
 * child that reads it here skips the YAML parser and the schema compiler,
 * about 0.3 s of CPU per process at start (BENCHMARKS.md, cold start).
 * A child started by hand has no such variable and loads the file itself.
 */
import type { Config } from './schema.js'

export { configPath } from './path.js'

const RESOLVED_CONFIG_ENV = 'TRINITY_RESOLVED_CONFIG'

export function resolvedConfigEnv(config: Config): Record<string, string> {
  return { [RESOLVED_CONFIG_ENV]: JSON.stringify(config) }
}

export function resolvedConfigFromEnv(env: NodeJS.ProcessEnv = process.env): Config | undefined {
  const json = env[RESOLVED_CONFIG_ENV]
  return json === undefined ? undefined : (JSON.parse(json) as Config)
}
