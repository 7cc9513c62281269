/**
 * The slice of MQTT.js's browser build (node_modules/mqtt/dist/mqtt.esm.js,
 * served at /dashboard-assets/vendor/ and mapped to `mqtt-browser` by each
 * page's import map) that the dashboard uses. Declared here because MQTT.js's
 * own typings pull in Node's, which the browser build must not see.
 */
declare module 'mqtt-browser' {
  export interface ConnectOptions {
    clientId?: string
    clean?: boolean
    keepalive?: number
    reconnectPeriod?: number
    connectTimeout?: number
    resubscribe?: boolean
    username?: string
    password?: string
  }
  export interface MqttClient {
    readonly connected: boolean
    on(event: 'connect' | 'close' | 'offline' | 'reconnect', listener: () => void): this
    on(event: 'error', listener: (error: Error) => void): this
    on(event: 'message', listener: (topic: string, payload: Uint8Array) => void): this
    on(event: 'packetsend' | 'packetreceive', listener: (packet: { cmd: string }) => void): this
    /** Restarts the keepalive timer; `force` even when `reschedulePings` is off. */
    reschedulePing(force?: boolean): void
    subscribe(filters: string[], options: { qos: 0 | 1 }, callback?: (error: Error | null) => void): this
    end(force?: boolean): this
  }
  const mqtt: { connect(url: string, options?: ConnectOptions): MqttClient }
  export default mqtt
}
