/** Sizes in config: a number of bytes, or a string such as `512kb`, `1mb`, `2m`, `1gb` (k, m, g are 1024-based). */

export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?(b|k|kb|kib|m|mb|mib|g|gb|gib)$'

const UNIT_BYTES = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const

export function parseSize(value: number | string): number {
  if (typeof value === 'number') return value
  const match = /^([0-9]+(?:\.[0-9]+)?)(b|k|kb|kib|m|mb|mib|g|gb|gib)$/.exec(value)
  if (match === null) throw new TypeError(`not a size: ${JSON.stringify(value)}`)
  const unit = (match[2] as string).charAt(0) as keyof typeof UNIT_BYTES
  return Math.round(Number(match[1]) * UNIT_BYTES[unit])
}

/** A byte count as people read it: `1 MiB (1048576 bytes)`, `512 KiB (524288 bytes)`. */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]]
  for (const [name, size] of units) {
    if (bytes >= size) {
      const amount = bytes / size
      return `${Number.isInteger(amount) ? amount : amount.toFixed(1)} ${name} (${bytes} bytes)`
    }
  }
  return `${bytes} bytes`
}
