/**
 * The pages import payload *types* from src/contract/payloads.ts, whose
 * decode() takes a Node Buffer. The browser build has no Node types; this is
 * the one shape of Buffer that file needs, so it type-checks here too.
 */
interface Buffer extends Uint8Array {
  toString(encoding?: string): string
}
