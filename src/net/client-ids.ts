/**
 * Every client id Trinity's processes use, by one scheme:
 * `trinity-<role>-<prefix, / as ->-<own id>`. A persistent session
 * (clean: false) is keyed on its id: a changed id strands what the broker
 * queued for the old one. Apart from bus-client.ts so that what only names
 * clients (the embedded broker, the hub) does not load MQTT.js.
 */
const flat = (prefix: string): string => prefix.replaceAll('/', '-')

/** Every id in `clientIds` starts with this; with broker auth on, only the hub's users may use them (broker/client-ids.ts). */
export const CLIENT_ID_NAMESPACE = 'trinity-'

/** Every client id Trinity's processes use; stable, since persistent sessions are keyed on them. */
export const clientIds = {
  coordinator: (prefix: string): string => `${CLIENT_ID_NAMESPACE}coordinator-${flat(prefix)}`,
  agent: (prefix: string, id: string): string => `${CLIENT_ID_NAMESPACE}agent-${flat(prefix)}-${id}`,
  bridge: (prefix: string, computer: string): string => `${CLIENT_ID_NAMESPACE}bridge-${flat(prefix)}-${computer}`,
  /** Per process and clean: a supervisor has nothing to resume. */
  supervisor: (pid: number = process.pid): string => `${CLIENT_ID_NAMESPACE}supervisor-${pid}`,
}
