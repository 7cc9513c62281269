/** Which config file: --config, else $TRINITY_CONFIG, else config/trinity.yaml. */
import { ENV } from './env.js'

export const DEFAULT_CONFIG_PATH = 'config/trinity.yaml'

export function configPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? env[ENV.config] ?? DEFAULT_CONFIG_PATH
}
