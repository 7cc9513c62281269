import { conformance } from './suite.js'

conformance('embedded')
