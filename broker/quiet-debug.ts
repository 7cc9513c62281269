/**
 * mqtt-packet, which Aedes parses and writes every packet with, calls `debug`
 * about fifteen times a packet. With debugging off, each call still builds
 * its arguments array before `debug` finds it has nothing to do: 8% of all the
 * hub allocated in a burst of 10,000 tasks (issue #12, BENCHMARKS.md). Here a
 * namespace that DEBUG leaves off gets a function that does nothing at all;
 * one DEBUG turns on gets the real one, so `DEBUG=mqtt-packet:*` still works.
 * What DEBUG says is read once, as `debug` itself reads it at load.
 *
 * mqtt-packet takes its `debug` functions as it loads, so this must run
 * before it does: embedded.ts imports this module before Aedes. `installed`
 * says whether it did; a test checks it in the hub's real import order.
 * It changes the very `debug` instance mqtt-packet resolves, found from
 * Aedes's location as packet-numbers.ts finds mqtt-packet.
 */
import { createRequire } from 'node:module'

interface DebugFunction {
  (...args: unknown[]): void
  enabled: boolean
  namespace: string
  extend: (namespace: string, delimiter?: string) => DebugFunction
}

interface DebugFactory {
  (namespace: string): DebugFunction
  enabled: (namespace: string) => boolean
}

/** A factory like `real` whose disabled namespaces cost nothing; every property is still `real`'s. */
function quietDebug(real: DebugFactory): DebugFactory {
  const make = (namespace: string): DebugFunction => (real.enabled(namespace) ? real(namespace) : silent(namespace))
  const silent = (namespace: string): DebugFunction =>
    Object.assign(() => undefined, { enabled: false, namespace, extend: (sub: string, delimiter = ':') => make(`${namespace}${delimiter}${sub}`) })
  return new Proxy(real, { apply: (_target, _this, args: unknown[]) => make(String(args[0])) })
}

const fromPacket = createRequire(createRequire(import.meta.resolve('aedes')).resolve('mqtt-packet'))
const debugPath = fromPacket.resolve('debug')
const parserPath = fromPacket.resolve('./parser.js')

/** true when mqtt-packet had not loaded yet, so it took its `debug` functions from the quiet factory. */
export const installed: boolean = fromPacket.cache[parserPath] === undefined

if (installed) {
  const real = fromPacket('debug') as DebugFactory
  const entry = fromPacket.cache[debugPath]
  if (entry !== undefined) entry.exports = quietDebug(real)
}
