/**
 * The coordinator's subscription table (src/coordinator/bus-handlers.ts): each
 * entry's filter delivers exactly the topic kind it is keyed on, so the
 * handler the table picks is the one written for that topic's shape. (That
 * every key has a handler is checked by the compiler: `BusHandlers`.)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SUBSCRIPTIONS, subscriptionsFor } from '../../src/coordinator/bus-handlers.js'
import { topicMatches, topicsFor } from '../../src/contract/topics.js'

const topics = topicsFor('unit/bus')

test('every subscription filter, its wildcards filled, parses back to the kind it is keyed on', () => {
  for (const [kind, subscription] of Object.entries(SUBSCRIPTIONS)) {
    const filter = subscription.filter(topics)
    const concrete = filter.split('/').map((level, i) => (level === '+' ? `id${i}` : level)).join('/')
    assert.ok(topicMatches(filter, concrete), filter)
    assert.equal(topics.parse(concrete)?.kind, kind, `${filter} → ${concrete}`)
  }
})

test('the subscription request names each filter once, heartbeats at QoS 0, the rest at QoS 1', () => {
  assert.deepEqual(subscriptionsFor(topics), {
    [topics.taskSubmit]: { qos: 1 },
    [topics.anyInstanceReport]: { qos: 1 },
    [topics.anyTaskRespond]: { qos: 1 },
    [topics.anyInstanceStatus]: { qos: 1 },
    [topics.anyInstanceHeartbeat]: { qos: 0 },
    [topics.anyMessage]: { qos: 1 },
    [topics.supervisorStatus]: { qos: 1 },
  })
})

test('only what carries a client\'s data into the store is bounded by limits.maxPayload', () => {
  const checked = Object.entries(SUBSCRIPTIONS).filter(([, s]) => s.sizeChecked).map(([kind]) => kind)
  assert.deepEqual(checked.sort(), ['instanceReport', 'message', 'taskRespond', 'taskSubmit'])
})
