/**
 * Ids an external broker cannot carry in a topic level (`broker.flavor`).
 *
 * nats-server 2.9 maps an MQTT topic onto a NATS subject, whose token
 * separator is `.`: a PUBLISH with a `.` inside a level closes the
 * publisher's connection ("characters ' ' and '.' not supported for MQTT
 * topics"), a SUBSCRIBE to one is answered SUBACK 0x80 (measured on 2.9.10;
 * fixed upstream after it). Trinity's ids allow `.` (ID_PATTERN), and ids
 * become topic levels: `task/{id}/event`, `instance/{id}/inbox`,
 * `message/{from}/{to}`. Were the hub to publish one, NATS would close the
 * hub's own connection, and a QoS 1 one, still unacknowledged, MQTT.js sends
 * again on the reconnect (a persistent session). So with `broker.flavor: nats` the hub
 * refuses such an id where it comes in (a submission, a message's sender, a
 * birth), with TRINITY_ERR_ID_UNSUPPORTED; config ids are refused at load.
 */
import type { Config } from '../config/schema.js'
import { TrinityError } from '../errors.js'

export type BrokerFlavor = Config['broker']['flavor']

/** The refusal for `id` (in `field`) on this broker, or null when it can carry it. */
export function unsupportedId(flavor: BrokerFlavor, field: string, id: string): TrinityError | null {
  if (flavor !== 'nats' || !id.includes('.')) return null
  return new TrinityError(
    'TRINITY_ERR_ID_UNSUPPORTED',
    `${field}: "${id}" contains "."; nats-server 2.9 (broker.flavor: nats) closes the connection of a client that publishes it in a topic level: use letters, digits, "_" and "-"`,
    { field },
  )
}
