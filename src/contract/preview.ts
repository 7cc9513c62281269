/**
 * Previews of task bodies, with no dependencies, so the dashboard's browser
 * code imports the hub's own rule instead of a copy of it.
 */

/** Longest preview of a content, result or progress, in characters (the cut ends in `…`). */
export const PREVIEW_CHARS = 160

/** A string as is, anything else as JSON, cut to PREVIEW_CHARS characters ending in `…` when longer. */
export function preview(value: unknown, max = PREVIEW_CHARS): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '')
  if (text.length <= max) return text
  let end = max - 1
  // Never split a surrogate pair: half a character is not valid UTF-8.
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${text.slice(0, end)}…`
}

/** UTF-8 bytes of a value as JSON (counted by hand: the dashboard's browser code has no Buffer). */
export function jsonBytes(value: unknown): number {
  return utf8Bytes(JSON.stringify(value) ?? '')
}

/** UTF-8 bytes of a text. */
export function utf8Bytes(text: string): number {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) { bytes += 4; i++ }
    else bytes += 3
  }
  return bytes
}
