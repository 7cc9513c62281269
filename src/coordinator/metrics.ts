/**
 * GET /metrics: Prometheus text, read from the coordinator at scrape time
 * (gauges with collect callbacks), so there is no second bookkeeping.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Coordinator } from './coordinator.js'

export class Metrics {
  private readonly registry = new Registry()

  constructor(coordinator: Coordinator) {
    const registers = [this.registry]
    // prom-client's default names already start with `process_` / `nodejs_`: the prefix is only ours.
    collectDefaultMetrics({ register: this.registry, prefix: 'trinity_' })
    new Gauge({
      name: 'trinity_instances', help: 'Instances by health state', labelNames: ['state'], registers,
      collect() {
        this.reset()
        for (const view of coordinator.instances()) this.inc({ state: view.state })
      },
    })
    new Gauge({
      name: 'trinity_instance_in_flight', help: 'Task legs held by each instance', labelNames: ['instance'], registers,
      collect() {
        this.reset()
        for (const view of coordinator.instances()) this.set({ instance: view.id }, view.inFlight)
      },
    })
    new Gauge({
      name: 'trinity_tasks', help: 'Tasks in the store by state', labelNames: ['state'], registers,
      collect() {
        for (const [state, n] of Object.entries(coordinator.taskCounts())) this.set({ state }, n)
      },
    })
    new Gauge({ name: 'trinity_messages', help: 'Messages in the log', registers, collect() { this.set(coordinator.store.messageCount()) } })
    new Counter({
      name: 'trinity_health_checks_total', help: 'Health checks run', registers,
      collect() { this.reset(); this.inc(coordinator.health.checks) },
    })
    new Counter({
      name: 'trinity_rejected_payloads_total', help: 'Bus payloads rejected as malformed', registers,
      collect() { this.reset(); this.inc(coordinator.rejected) },
    })
    new Gauge({ name: 'trinity_bus_connected', help: '1 when the coordinator is connected to the bus', registers, collect() { this.set(coordinator.connected ? 1 : 0) } })
  }

  get contentType(): string {
    return this.registry.contentType
  }

  render(): Promise<string> {
    return this.registry.metrics()
  }
}
