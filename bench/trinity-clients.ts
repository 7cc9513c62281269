/**
 * The two MQTT clients the bench drives any Trinity hub with, embedded or
 * clustered, so that both are measured the same way: a no-op worker that
 * completes each task it is given (instance `noop`), and a producer that
 * submits at QoS 1 (resolved on its PUBACK) and sees every `completed` event.
 */
import type { MqttClient } from 'mqtt'
import { topicsFor } from '../src/contract/topics.js'
import { connectBus } from '../src/net/bus-client.js'
import type { InboxFrame } from '../src/contract/payloads/inbox.js'

export interface TrinityClients {
  /** Resolves on the PUBACK of the task's submission. */
  submit(id: string): Promise<void>
  close(): Promise<void>
}

const topics = topicsFor()

function mqttClient(url: string, clientId: string): Promise<MqttClient> {
  return connectBus({ url, clientId, clean: true, reconnectPeriod: 0 }, 'first-error')
}

/** The worker on `urls.worker`, the producer on `urls.producer`; `onCompleted` hears each completed task's id. */
export async function trinityClients(urls: { worker: string; producer: string }, onCompleted: (id: string) => void): Promise<TrinityClients> {
  // The no-op worker, as any instance speaks the contract.
  const worker = await mqttClient(urls.worker, 'bench-peer-noop')
  worker.on('message', (_t, payload) => {
    const frame = JSON.parse(payload.toString()) as InboxFrame
    if (frame.kind === 'ping') return void worker.publish(topics.instanceHeartbeat('noop'), JSON.stringify({ ts: Date.now(), nonce: frame.nonce }))
    if (frame.kind !== 'task') return
    worker.publish(topics.instanceReport('noop'), JSON.stringify({ taskId: frame.task.id, state: 'completed', leaseToken: frame.leaseToken, output: null }), { qos: 1 })
  })
  await worker.subscribeAsync(topics.instanceInbox('noop'), { qos: 1 })
  await worker.publishAsync(topics.instanceStatus('noop'), JSON.stringify({ state: 'online', session: Date.now(), concurrency: 1000, capabilities: ['general'] }), { qos: 1, retain: true })
  const producer = await mqttClient(urls.producer, 'bench-peer-producer')
  producer.on('message', (_t, payload) => {
    const event = JSON.parse(payload.toString()) as { id: string; state: string }
    if (event.state === 'completed') onCompleted(event.id)
  })
  await producer.subscribeAsync(topics.anyTaskEvent, { qos: 0 })
  return {
    async submit(id) {
      await producer.publishAsync(topics.taskSubmit, JSON.stringify({ id, type: 'general', content: 'x' }), { qos: 1 })
    },
    async close() {
      await producer.endAsync(); await worker.endAsync()
    },
  }
}
