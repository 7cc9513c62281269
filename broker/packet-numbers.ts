/**
 * mqtt-packet, the encoder Aedes writes every packet with, fills on its first
 * write a cache of 65,536 two-byte Buffers (one per packet id or length up to
 * 0xffff), so that a number is a shared Buffer instead of a new one. A heap
 * snapshot of the idle hub (issue #12) put that cache at 6 MB, a fifth of the
 * whole heap; without it, each number written is a 2-byte Buffer taken from
 * Node's pool, a few per packet, which `npm run bench` does not tell apart.
 *
 * Turned off before the broker writes anything, on the very instance Aedes
 * loads: mqtt-packet is Aedes's dependency, not ours, so it is resolved from
 * Aedes's own location (a CommonJS module is one instance per resolved path).
 */
import { createRequire } from 'node:module'

interface PacketWriter { cacheNumbers: boolean }

/** Aedes's mqtt-packet `generate`/`writeToStream`, whose `cacheNumbers` switch decides the cache. */
function aedesPacketWriter(): PacketWriter {
  const fromAedes = createRequire(import.meta.resolve('aedes'))
  return (fromAedes('mqtt-packet') as { writeToStream: PacketWriter }).writeToStream
}

/** Idempotent: the cache is built lazily on the first write, so this must run before the broker writes. */
export function dropPacketNumberCache(): void {
  aedesPacketWriter().cacheNumbers = false
}
