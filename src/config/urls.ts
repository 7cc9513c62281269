/**
 * The hub's and the bus's URLs as a client on this machine reaches them, in
 * one place. A server bound to every address (`0.0.0.0`, `::`) is reached on
 * loopback; an IPv6 literal goes in brackets [RFC 3986 §3.2.2], so
 * `hub.host: '::1'` gives `http://[::1]:8900`, never `http://::1:8900`.
 */
import type { Config } from './schema.js'

const EVERY_ADDRESS: ReadonlySet<string> = new Set(['0.0.0.0', '::', '[::]'])

/** The host part of a URL for a server bound to `host`. */
export function reachableHost(host: string): string {
  if (EVERY_ADDRESS.has(host)) return '127.0.0.1'
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/** The hub's HTTP API (https with `hub.tls`); `port` when the bound one differs from the config (port 0). */
export function hubHttpUrl(config: Config, port: number = config.hub.port): string {
  return `${config.hub.tls === null ? 'http' : 'https'}://${reachableHost(config.hub.host)}:${port}`
}

/** The bus: the external broker's URL, or the embedded broker's TCP listener (`port`: the bound one). */
export function busUrl(config: Config, port: number = config.broker.port): string {
  if (config.broker.mode === 'external' && config.broker.url !== undefined) return config.broker.url
  return `mqtt://${reachableHost(config.broker.host)}:${port}`
}
