/** The same suite with `broker.mode: external` against a real Mosquitto started here. */
import { conformance } from './suite.js'

conformance('external')
