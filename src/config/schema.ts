/**
 * The one schema for config/trinity.yaml. Unknown keys are rejected at every
 * level; defaults live in the schema (`default`) and in ./defaults.ts for the
 * seed's routing table. load.ts validates, applies defaults and freezes.
 */
import Type, { type Static } from 'typebox'
import { SCOPES, STRATEGIES, type Scope, type Strategy } from '../contract/constants.js'
import { Id, Priority, TaskType } from '../contract/payloads/common.js'
import { DURATION_PATTERN } from './duration.js'
import { SIZE_PATTERN } from './size.js'

const Duration = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
  description: 'milliseconds, or a string such as 500ms, 30s, 5m, 2h, 7d',
})
const Port = Type.Integer({ minimum: 0, maximum: 65535 })
const Host = Type.String({ minLength: 1 })
const strict = { additionalProperties: false } as const
/** A PEM file (certificate chain or private key); load.ts checks that it is there. */
const TlsFile = Type.String({ minLength: 1, description: 'the path of a PEM file' })
/**
 * An id as written in YAML: a string id, or a whole number (`computer: 2`,
 * `peers: [1, 3]`, which YAML reads as integers). Resolved to its decimal
 * string, so the Config and the wire only ever carry string ids.
 */
const ConfigId = Type.Union([Id, Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })], {
  description: 'an id (letters, digits, `.`, `_`, `-`; at most 64) or a whole number ≥ 0',
})

export const BrokerUser = Type.Object(
  {
    username: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })], {
      description: 'a non-empty string or a whole number ≥ 0 (an instance user\'s username is its id)',
    }),
    password: Type.String({ minLength: 1 }),
    role: Type.Union([Type.Literal('admin'), Type.Literal('instance'), Type.Literal('client'), Type.Literal('reader')], {
      description: 'admin: everything; instance: publishes only under its own instance and message namespaces (its id is the username); client: may also submit tasks; reader: subscribes, publishes nothing (what the dashboards get from GET /auth/bus)',
    }),
  },
  strict,
)

/** One bearer token: exactly one of `token`, `tokenHash`, `tokenEnv` (load.ts checks). */
const HttpToken = Type.Object(
  {
    name: Id,
    scope: Type.Enum([...SCOPES]),
    token: Type.Optional(Type.String({ minLength: 16, description: 'the token itself (at least 16 characters); prefer tokenHash or tokenEnv' })),
    tokenHash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'the sha256 of the token, 64 lower-case hex digits' })),
    tokenEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'the name of an environment variable holding the token' })),
  },
  { additionalProperties: false },
)

export const InstanceConfig = Type.Object(
  {
    id: ConfigId,
    name: Type.Optional(Type.String()),
    role: Type.Optional(ConfigId),
    capabilities: Type.Optional(Type.Array(TaskType)),
    port: Type.Optional(Port),
    healthUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
    command: Type.Optional(Type.String({ minLength: 1 })),
    /** adapter exec: the program's arguments, passed as they are (no shell, no splitting). */
    args: Type.Optional(Type.Array(Type.String())),
    /** adapter exec: run `command` by `/bin/sh -c` (then `args` are $1, $2…). */
    shell: Type.Optional(Type.Boolean()),
    /** adapter exec: SIGTERM, then SIGKILL of the command's process group after this. */
    stopTimeout: Type.Optional(Duration),
    cwd: Type.Optional(Type.String()),
    env: Type.Optional(Type.Record(Type.String(), Type.String())),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    adapter: Type.Optional(Type.Enum(['mqtt', 'http', 'exec'], {
      description: 'http: tasks by POST {url}/task, health by GET {url}/health; exec: the hub runs `command` once per task',
    })),
    url: Type.Optional(Type.String({ pattern: '^https?://' })),
    restartUnhealthyAfter: Type.Optional(Type.Union([Duration, Type.Null()], {
      description: 'restart this instance when its health stays timeout, offline or error this long (overrides supervisor.restartUnhealthyAfter; null: never)',
    })),
  },
  strict,
)

const RouteConfig = Type.Object(
  {
    targets: Type.Array(ConfigId, { minItems: 1, description: 'instance ids or roles' }),
    strategy: Type.Optional(Type.Enum([...STRATEGIES])),
  },
  strict,
)

/** The git bridge between computers (issue #5); spec in coordination/README.md. */
const SyncConfig = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    remote: Type.Optional(Type.String({ minLength: 1, description: 'git URL or path of the shared repo' })),
    branch: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$' })),
    workdir: Type.Optional(Type.String({ minLength: 1, description: "the bridge's own clone and state; never the project checkout" })),
    computer: Type.Optional(ConfigId),
    peers: Type.Optional(Type.Array(ConfigId)),
    interval: Type.Optional(Duration),
    jitter: Type.Optional(Duration),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    backoff: Type.Optional(Type.Array(Duration, { minItems: 1 })),
    mirror: Type.Optional(Type.Array(Type.String({ minLength: 1, description: 'MQTT topic filters whose messages go to other computers' }))),
    retention: Type.Optional(Type.Integer({ minimum: 10, description: 'messages per live file before the oldest are archived' })),
  },
  strict,
)

export const ConfigSchema = Type.Object(
  {
    hub: Type.Optional(
      Type.Object(
        {
          host: Type.Optional(Host),
          port: Type.Optional(Port),
          dataDir: Type.Optional(Type.String({ minLength: 1 })),
          topicPrefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$' })),
          statsInterval: Type.Optional(Duration),
          requestTimeout: Type.Optional(Duration),
          auth: Type.Optional(Type.Object({ tokens: Type.Optional(Type.Array(HttpToken)) }, strict)),
          allowInsecure: Type.Optional(Type.Boolean({ description: 'start beyond loopback without auth (README, Security)' })),
          allowedOrigins: Type.Optional(Type.Array(Type.String({ pattern: '^https?://[^/]+$', description: 'an origin such as https://ops.example:8443' }))),
          tls: Type.Optional(Type.Object({ cert: TlsFile, key: TlsFile }, strict)),
        },
        strict,
      ),
    ),
    broker: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(Type.Union([Type.Literal('embedded'), Type.Literal('external')])),
          host: Type.Optional(Host),
          port: Type.Optional(Port),
          websocket: Type.Optional(Type.Boolean()),
          persistence: Type.Optional(Type.Union([Type.Literal('disk'), Type.Literal('memory')])),
          url: Type.Optional(Type.String({
            pattern: '^(mqtt|mqtts|ws|wss|tcp)://[^,\\s]+(,(mqtt|mqtts|ws|wss|tcp)://[^,\\s]+)*$',
            description: 'a broker URL, or the URLs of one clustered broker\'s nodes separated by commas (each reconnect tries the next)',
          })),
          flavor: Type.Optional(Type.Union([Type.Literal('mqtt'), Type.Literal('nats')], {
            description: 'mode external: which broker broker.url is. nats: nats-server 2.9 (ids with `.` refused, see docs/topics.md)',
          })),
          username: Type.Optional(Type.String()),
          password: Type.Optional(Type.String()),
          auth: Type.Optional(
            Type.Object(
              { enabled: Type.Optional(Type.Boolean()), users: Type.Optional(Type.Array(BrokerUser)) },
              strict,
            ),
          ),
          tls: Type.Optional(Type.Object({ cert: TlsFile, key: TlsFile, port: Type.Optional(Port) }, strict)),
        },
        strict,
      ),
    ),
    log: Type.Optional(
      Type.Object(
        {
          level: Type.Optional(
            Type.Enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
          ),
          pretty: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('auto')])),
          file: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Null()], { description: 'also write JSON lines here, rotated by size' })),
          maxSize: Type.Optional(Type.String({ pattern: '^[0-9]+[kmg]$', description: 'rotate the log file at this size, e.g. 10m' })),
          maxFiles: Type.Optional(Type.Integer({ minimum: 1, description: 'rotated files kept beside the live one' })),
        },
        strict,
      ),
    ),
    health: Type.Optional(
      Type.Object(
        {
          interval: Type.Optional(Duration),
          timeout: Type.Optional(Duration),
          degradedAfter: Type.Optional(Duration),
          missesBeforeOffline: Type.Optional(Type.Integer({ minimum: 1 })),
          passesBeforeOnline: Type.Optional(Type.Integer({ minimum: 1 })),
          forgetAfter: Type.Optional(Type.Union([Duration, Type.Null()], { description: 'forget a joined instance offline and silent this long (null: never)' })),
        },
        strict,
      ),
    ),
    tasks: Type.Optional(
      Type.Object(
        {
          lease: Type.Optional(Duration),
          inputTimeout: Type.Optional(Type.Union([Duration, Type.Null()], { description: 'how long a leg may wait for a person\'s answer (needs_input) before it is lost and retried (null: never)' })),
          maxAttempts: Type.Optional(Type.Integer({ minimum: 1 })),
          retryBackoff: Type.Optional(
            Type.Object(
              {
                base: Type.Optional(Duration),
                factor: Type.Optional(Type.Number({ minimum: 1 })),
                max: Type.Optional(Duration),
              },
              strict,
            ),
          ),
          defaultPriority: Type.Optional(Priority),
          fallback: Type.Optional(Type.Union([RouteConfig, Type.Null()])),
          keepFinished: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        strict,
      ),
    ),
    messages: Type.Optional(
      Type.Object(
        { maxCount: Type.Optional(Type.Integer({ minimum: 1 })), maxAge: Type.Optional(Duration) },
        strict,
      ),
    ),
    store: Type.Optional(
      Type.Object(
        {
          sync: Type.Optional(Type.Union([Type.Literal('normal'), Type.Literal('full')])),
          backend: Type.Optional(Type.Union([Type.Literal('sqlite'), Type.Literal('nats-kv')], {
            description: 'sqlite: trinity.db in hub.dataDir (one hub). nats-kv: JetStream KV on a NATS cluster, shared by a leader hub and its standbys',
          })),
          url: Type.Optional(Type.String({
            pattern: '^nats://[^,\\s]+(,nats://[^,\\s]+)*$',
            description: 'backend nats-kv: the NATS servers\' client URLs, separated by commas',
          })),
          replicas: Type.Optional(Type.Integer({ minimum: 1, maximum: 5, description: 'backend nats-kv: copies of each bucket (3 survives the loss of one node of three)' })),
          lease: Type.Optional(Duration),
          username: Type.Optional(Type.String({ minLength: 1, description: 'backend nats-kv: the NATS user the store and the lease connect as (with store.password)' })),
          password: Type.Optional(Type.String({ minLength: 1, description: 'backend nats-kv: that user\'s password (an environment override keeps it out of the file, README)' })),
        },
        strict,
      ),
    ),
    supervisor: Type.Optional(
      Type.Object(
        {
          readyTimeout: Type.Optional(Duration),
          stopTimeout: Type.Optional(Duration),
          restart: Type.Optional(
            Type.Object(
              {
                base: Type.Optional(Duration),
                factor: Type.Optional(Type.Number({ minimum: 1 })),
                max: Type.Optional(Duration),
                jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
                resetAfter: Type.Optional(Duration),
              },
              strict,
            ),
          ),
          crashLoop: Type.Optional(
            Type.Object({ restarts: Type.Optional(Type.Integer({ minimum: 1 })), window: Type.Optional(Duration) }, strict),
          ),
          restartUnhealthyAfter: Type.Optional(Type.Union([Duration, Type.Null()])),
        },
        strict,
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          maxPayload: Type.Optional(Type.Union([Type.Integer({ minimum: 1024 }), Type.String({ pattern: SIZE_PATTERN })], {
            description: 'largest HTTP body and MQTT payload (task submit, report, message) the hub accepts: bytes, or e.g. 512kb, 1mb',
          })),
          // At most 1000: JSON.stringify overflows Node's stack a few thousand levels down (issue #14), and records nest a field 3 deeper.
          maxDepth: Type.Optional(Type.Integer({
            minimum: 1, maximum: 1000,
            description: 'deepest nesting of arrays and objects in a field of an HTTP body or MQTT payload the hub accepts (task content, report output, message)',
          })),
          maxClientBuffer: Type.Optional(Type.Union([Type.Integer({ minimum: 65_536 }), Type.String({ pattern: SIZE_PATTERN })], {
            description: 'bytes the embedded broker queues for one client that is not reading; over it the client is disconnected (a slow consumer): bytes, or e.g. 8mb',
          })),
          maxPacket: Type.Optional(Type.Union([Type.Integer({ minimum: 1024 }), Type.String({ pattern: SIZE_PATTERN })], {
            description: 'largest MQTT packet a client may send the embedded broker (CONNECT included), judged from its header before it is buffered; over it the connection is closed: bytes, or e.g. 2mb. Default limits.maxPayload + 64kb',
          })),
          maxConnectionsPerUser: Type.Optional(Type.Integer({
            minimum: 1,
            description: 'connections one broker.auth user may hold at once (auth on; the hub\'s own clients are not counted); one more is refused with CONNACK 5',
          })),
          sessionMaxMessages: Type.Optional(Type.Integer({
            minimum: 1,
            description: 'QoS 1 messages the embedded broker keeps for an absent persistent session (disk persistence); over it the oldest are dropped, with a log line. The hub\'s own sessions are not bounded',
          })),
          sessionMaxAge: Type.Optional(Duration),
          maxJoinedInstances: Type.Optional(Type.Integer({
            minimum: 0,
            description: 'instances not in instances[] the hub keeps in its registry at once; a birth from one more new id is refused on hub/errors (configured instances always join; health.forgetAfter expires silent joined ones)',
          })),
        },
        strict,
      ),
    ),
    sync: Type.Optional(SyncConfig),
    instances: Type.Optional(Type.Array(InstanceConfig)),
    routes: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), RouteConfig)),
  },
  strict,
)
export type RawConfig = Static<typeof ConfigSchema>
/** One instance as resolved: its id and role are strings, whatever the YAML wrote. */
export type InstanceConfig = Omit<Static<typeof InstanceConfig>, 'id' | 'role'> & { id: string; role?: string }
/** PEM file paths, as written in the config (relative to the working directory). */
export interface TlsFiles { readonly cert: string; readonly key: string }
/** One HTTP token as resolved: only its digest is kept (and handed to children). */
export interface HttpTokenConfig { readonly name: string; readonly scope: Scope; readonly sha256: string }
/** One broker user as resolved: the username is a string. */
export type BrokerUser = Omit<Static<typeof BrokerUser>, 'username'> & { username: string }

export interface Route {
  readonly targets: readonly string[]
  readonly strategy: Strategy
}

/** The resolved configuration: defaults applied, durations in milliseconds, frozen. */
export interface Config {
  readonly source: string
  readonly hub: {
    readonly host: string
    readonly port: number
    readonly dataDir: string
    readonly topicPrefix: string
    readonly statsIntervalMs: number
    /** The longest one HTTP request may take to arrive, headers and body: a slow client is cut off (408). */
    readonly requestTimeoutMs: number
    /** Bearer tokens for the HTTP API, each as the sha256 (hex) of its secret; `tokenEnv` was read at load. */
    readonly auth: { readonly tokens: readonly HttpTokenConfig[] }
    readonly allowInsecure: boolean
    /** Origins besides the hub's own whose pages may POST and open /mqtt. */
    readonly allowedOrigins: readonly string[]
    /** HTTPS (and WSS for /mqtt) with these PEM files; null: plain HTTP. */
    readonly tls: TlsFiles | null
  }
  readonly broker: {
    readonly mode: 'embedded' | 'external'
    readonly host: string
    readonly port: number
    readonly websocket: boolean
    readonly persistence: 'disk' | 'memory'
    readonly url: string | undefined
    /** The external broker's kind: `nats` makes the hub refuse what nats-server 2.9 cannot carry (docs/topics.md). */
    readonly flavor: 'mqtt' | 'nats'
    readonly username: string | undefined
    readonly password: string | undefined
    readonly auth: { readonly enabled: boolean; readonly users: readonly BrokerUser[] }
    /** mqtts on `port` (beside the plain TCP listener) with these PEM files; null: none. */
    readonly tls: (TlsFiles & { readonly port: number }) | null
  }
  readonly log: {
    readonly level: string
    readonly pretty: boolean | 'auto'
    readonly file: string | null
    readonly maxSize: string
    readonly maxFiles: number
  }
  readonly supervisor: {
    readonly readyTimeoutMs: number
    readonly stopTimeoutMs: number
    readonly restart: { readonly baseMs: number; readonly factor: number; readonly maxMs: number; readonly jitter: number; readonly resetAfterMs: number }
    readonly crashLoop: { readonly restarts: number; readonly windowMs: number }
    readonly restartUnhealthyAfterMs: number | null
  }
  readonly health: {
    readonly intervalMs: number
    readonly timeoutMs: number
    readonly degradedAfterMs: number
    readonly missesBeforeOffline: number
    readonly passesBeforeOnline: number
    /** Joined (not configured) instances offline and silent this long leave the registry; null: never. */
    readonly forgetAfterMs: number | null
  }
  readonly tasks: {
    readonly leaseMs: number
    /** A leg in needs_input waits this long for its answer (its lease does not run meanwhile), then is lost; null: forever. */
    readonly inputTimeoutMs: number | null
    readonly maxAttempts: number
    readonly retryBackoff: { readonly baseMs: number; readonly factor: number; readonly maxMs: number }
    readonly defaultPriority: Static<typeof Priority>
    readonly fallback: Route | null
    readonly keepFinished: number
  }
  readonly messages: { readonly maxCount: number; readonly maxAgeMs: number }
  readonly store: {
    readonly sync: 'normal' | 'full'
    readonly backend: 'sqlite' | 'nats-kv'
    /** backend nats-kv: the servers' URLs; [] for sqlite. */
    readonly urls: readonly string[]
    readonly replicas: number
    /** backend nats-kv: the leader's lease; a standby takes over at most this long after the leader stops renewing it. */
    readonly leaseMs: number
    /** backend nats-kv: the NATS login of the store's and the lease's connections; null: none. */
    readonly login: { readonly username: string; readonly password: string } | null
  }
  /** maxPayload, maxClientBuffer, maxPacket: bytes; maxDepth: levels of arrays and objects in one field. */
  readonly limits: {
    readonly maxPayload: number
    readonly maxDepth: number
    readonly maxClientBuffer: number
    readonly maxPacket: number
    readonly maxConnectionsPerUser: number
    /** What an absent persistent session keeps: messages, and ms since each was queued. */
    readonly sessionMaxMessages: number
    readonly sessionMaxAgeMs: number
    readonly maxJoinedInstances: number
  }
  readonly sync: {
    readonly enabled: boolean
    readonly remote: string | undefined
    readonly branch: string
    readonly workdir: string
    readonly computer: string
    readonly peers: readonly string[]
    readonly intervalMs: number
    readonly jitterMs: number
    readonly retries: number
    readonly backoffMs: readonly number[]
    readonly mirror: readonly string[]
    readonly retention: number
  }
  readonly instances: readonly InstanceConfig[]
  readonly routes: Readonly<Record<string, Route>>
}
