/** Which config file: --config, else $TRINITY_CONFIG, else config/trinity.yaml. */
export const DEFAULT_CONFIG_PATH = 'config/trinity.yaml'

export function configPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? env['TRINITY_CONFIG'] ?? DEFAULT_CONFIG_PATH
}
