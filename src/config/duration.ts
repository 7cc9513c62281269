/** Durations in config: a number of milliseconds, or a string such as `250ms`, `30s`, `5m`, `2h`, `7d`. */

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$'

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$/.exec(value)
  if (match === null) throw new TypeError(`not a duration: ${JSON.stringify(value)}`)
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS])
}
