/**
 * Every environment variable Trinity reads or sets, named once (as
 * src/contract/topics.ts names the topics): readers and the supervisor's
 * child-environment builder (src/supervisor/child-env.ts) import the names
 * from here, and test/env-names.test.ts checks that no other module spells one and
 * that the README lists exactly the `ENV` set.
 *
 * Each entry says who sets it, who reads it, and what it means. Only names
 * live here, not their parsing: each reader keeps its own rule (an empty
 * TRINITY_MQTT_URL means "unset" to the bridge, for instance).
 */

/** What a user, the supervisor or a child program may set or read. Documented in README.md. */
export const ENV = {
  /** Set by the user (or the supervisor, for its children): the config file; read by `trinity`, the bridge, the fleet (config/path.ts). */
  config: 'TRINITY_CONFIG',
  /** Set by the user: `path=value` overrides laid over the YAML before validation (config/env-overrides.ts). */
  set: 'TRINITY_SET',
  /** Set by the supervisor for its children: the validated config as JSON, so they skip the YAML (config/resolved-env.ts). */
  resolvedConfig: 'TRINITY_RESOLVED_CONFIG',
  /** Set by the supervisor for its children: `1`, they run under `trinity start`. Trinity reads it nowhere; a child's own program may. */
  supervised: 'TRINITY_SUPERVISED',
  /** Set by the supervisor for the hub only: the hub's bus secret, shared with the bridge as its password (hub-identity.ts). */
  hubSecret: 'TRINITY_HUB_SECRET',
  /** Set by the user or the supervisor (bridge, instances): the bus URL (or a clustered broker's node URLs, comma separated); read by the agent SDK, the fleet, the bridge and `trinity mcp`. */
  mqttUrl: 'TRINITY_MQTT_URL',
  /** Set by the user or the supervisor (bridge; each instance with a broker user of its id): the bus login; read by the bridge, the agent SDK, `trinity mcp` and `trinity tail`. */
  mqttUsername: 'TRINITY_MQTT_USERNAME',
  /** Set by the user or the supervisor (bridge; each instance with a broker user of its id): the bus password; read by the bridge, the agent SDK, `trinity mcp` and `trinity tail`. */
  mqttPassword: 'TRINITY_MQTT_PASSWORD',
  /** Set by the user or the supervisor (bridge, instances): the hub's HTTP URL; read by `trinity` client commands (`trinity mcp` too) and the fleet. */
  url: 'TRINITY_URL',
  /** Set by the user (or an instance's `env`): the bearer token `trinity` client commands (as --token does) and the fleet's monitor_system send (hub.auth.tokens). */
  token: 'TRINITY_TOKEN',
  /** Set by the supervisor for each instance, by the hub for each run of an exec instance's command, or by the user for `trinity mcp`: its id, so any program knows who it is without the YAML. */
  instanceId: 'TRINITY_INSTANCE_ID',
  /** Set by the hub for each run of an exec instance's command (coordinator/exec-adapter.ts): the task's id. */
  taskId: 'TRINITY_TASK_ID',
  /** Set by the hub for each run of an exec instance's command: the task's type. */
  taskType: 'TRINITY_TASK_TYPE',
  /** Set by the hub for each run of an exec instance's command: the attempt, 1 for the first. */
  taskAttempt: 'TRINITY_TASK_ATTEMPT',
  /** Set by the hub for each run of an exec instance's command, when it fits (64 KB): the content, a string as it is, anything else as JSON. */
  taskContent: 'TRINITY_TASK_CONTENT',
  /** Set by the supervisor for an instance with a configured port, or by the user (0: any free one); read by the fleet. */
  instancePort: 'TRINITY_INSTANCE_PORT',
  /** Set by the supervisor for each run of each child (and so inherited by all it starts): the run's tag; read by the supervisor (and by its lifeline once it is killed) from /proc/<pid>/environ, to kill what is left of a run when it ends, `setsid` escapees too (supervisor/run-reaper.ts). */
  runId: 'TRINITY_RUN_ID',
  /** Set by the user (or an instance's `env` in the config): where the fleet's build_project writes; read by the fleet. */
  workspace: 'TRINITY_WORKSPACE',
} as const

/** What only the test and bench harness reads: not a user setting, so not in README.md. */
export const TEST_ENV = {
  /** Set by whoever runs the tests or benches: extra node flags for hubs test/helpers/hub.ts spawns (a CPU profile, BENCHMARKS.md). */
  hubNodeArgs: 'TRINITY_HUB_NODE_ARGS',
  /** Set by a test for test/fixtures/instance-process.ts: that test instance's options as JSON. */
  testInstance: 'TRINITY_TEST_INSTANCE',
  /** Set by test/hub-footprint.test.ts for test/fixtures/module-probe.ts: where the probe writes what the hub loaded. */
  moduleProbe: 'TRINITY_TEST_MODULE_PROBE',
  /** Set by whoever runs the tests: a directory where test/helpers/hub.ts writes each hub's whole output (the failure messages keep only its end). */
  hubLogDir: 'TRINITY_TEST_HUB_LOG_DIR',
} as const
