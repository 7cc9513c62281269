/**
 * MQTT over WebSocket on the hub's HTTP server, so browsers (the dashboard)
 * and clients behind HTTP-only proxies reach the same broker as TCP clients.
 * Each upgraded socket becomes a byte stream handed to the broker.
 */
import type { Duplex } from 'node:stream'
import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import { createWebSocketStream } from 'ws'

/** MQTT 3.1.1/5 and 3.1 WebSocket subprotocol names (MQTT 3.1.1 §6). */
const MQTT_SUBPROTOCOLS: readonly string[] = ['mqtt', 'mqttv3.1']

export interface StreamBroker {
  handleStream(stream: Duplex, peer?: string): void
}

/** Picks the MQTT subprotocol the client offered, refusing the upgrade without one [MQTT-6.0.0-3]. */
export function selectMqttSubprotocol(offered: Set<string>): string | false {
  return MQTT_SUBPROTOCOLS.find((name) => offered.has(name)) ?? false
}

const registered = new WeakMap<FastifyInstance, Set<string>>()

/**
 * Serves MQTT over WebSocket at `path` (default `/mqtt`).
 *
 * Registers @fastify/websocket itself, with `handleProtocols` choosing the
 * MQTT subprotocol, unless the app already has it. An app that uses
 * @fastify/websocket elsewhere must `await app.register(websocket)` before
 * calling this (a second registration would answer each upgrade twice); ws
 * then accepts the first subprotocol a client offers, which for MQTT clients
 * is `mqtt`. `maxPacket` bounds a WebSocket frame too (`limits.maxPacket`).
 * Await this before `app.listen()`. Calling it again for the same
 * app and path does nothing.
 */
export async function registerMqttWebSocket(app: FastifyInstance, broker: StreamBroker, path = '/mqtt', maxPacket?: number): Promise<void> {
  const paths = registered.get(app) ?? new Set<string>()
  if (paths.has(path)) return
  paths.add(path)
  registered.set(app, paths)

  if (!app.hasDecorator('websocketServer')) {
    // ws holds a whole frame (up to 100 MiB by default) before the broker sees a byte: no frame over the packet bound.
    await app.register(websocket, { options: { handleProtocols: selectMqttSubprotocol, ...(maxPacket === undefined ? {} : { maxPayload: maxPacket }) } })
  }
  app.get(path, { websocket: true }, (socket, request) => {
    broker.handleStream(createWebSocketStream(socket), `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`)
  })
}
