/**
 * Loading config/trinity.yaml: parse, validate against the one schema, check
 * what a schema cannot (duplicate ids, external mode without a URL), resolve
 * defaults and freeze. Every error names `file:line:col`, the field path and
 * what was expected; the CLI turns it into exit code 2.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type YAMLError } from 'yaml'
import { schemaChecker, type SchemaError } from '../contract/payloads/validate.js'
import { TrinityError } from '../errors.js'
import { DEFAULTS, resolveConfig } from './defaults.js'
import { ENV } from './env.js'
import { findExecutable } from './executable.js'
import { layOverrides } from './env-overrides.js'
import { ConfigSchema, type Config, type RawConfig } from './schema.js'

export { DEFAULT_CONFIG_PATH, configPath } from './path.js'
export { EXIT_CONFIG } from './exit-code.js'
import { EXIT_CONFIG } from './exit-code.js'
import { configPath } from './path.js'
import { formatSize, parseSize } from './size.js'
import { exposureProblems } from './exposure.js'

export interface ConfigProblem {
  file: string
  line: number
  col: number
  /** e.g. `instances[2].port`, or `(root)`. */
  field: string
  expected: string
}

export class ConfigError extends TrinityError {
  readonly problems: readonly ConfigProblem[]
  /** `code`: TRINITY_ERR_EXEC_COMMAND_NOT_FOUND when a missing program is all that is wrong. */
  constructor(problems: ConfigProblem[], code: 'TRINITY_ERR_CONFIG_INVALID' | 'TRINITY_ERR_EXEC_COMMAND_NOT_FOUND' = 'TRINITY_ERR_CONFIG_INVALID') {
    super(code, problems.map(formatProblem).join('\n'))
    this.problems = problems
  }
}

/**
 * What loading checks beyond the file itself. `executables`: every
 * `adapter: exec` program exists (config/executable.ts), for the processes
 * that will run them (`trinity hub`, `trinity start`); client commands that
 * read the file only for a URL skip it.
 */
export interface LoadOptions {
  /** Check that each exec instance's program exists (`trinity hub`, `trinity start`; not the client commands). */
  readonly executables?: boolean
  /** Where `hub.auth.tokens[].tokenEnv` is read (default process.env). */
  readonly env?: NodeJS.ProcessEnv
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.field}: ${p.expected}`
}

/** The file, with TRINITY_SET's overrides from `env` laid over it (env-overrides.ts). */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Config {
  const file = resolve(path)
  if (!existsSync(file)) {
    throw new TrinityError('TRINITY_ERR_CONFIG_NOT_FOUND', path)
  }
  return parseConfig(readFileSync(file, 'utf8'), path, env[ENV.set], { ...options, env })
}

/** Generated at build time (scripts/freeze-schemas.mjs): TypeBox loads only for a file with a mistake in it. */
const checker = schemaChecker(ConfigSchema)

/** `overrides`: a TRINITY_SET value, validated with the file. */
export function parseConfig(text: string, file = '<config>', overrides?: string, options: LoadOptions = {}): Config {
  const env = options.env ?? process.env
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const at = (offset: number): { line: number; col: number } => lineCounter.linePos(offset)
  // Only the first syntax error: the parser's later ones are its own
  // confusion after it (one tab gave seven lines), and point at good lines.
  const syntax = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0])[0]
  if (syntax !== undefined) {
    throw new ConfigError([{ file, ...at(syntax.pos[0]), field: '(yaml)', expected: yamlMessage(syntax) }])
  }
  const layered = layOverrides(doc, overrides)
  const raw: unknown = doc.toJS() ?? {}
  const problems: ConfigProblem[] = [...layered.problems]
  if (!checker.Check(raw)) {
    const errors = [...checker.Errors(raw)]
    // A union reports each failed branch and then itself: keep the union's line only.
    const unions = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath))
    const seen = new Set<string>()
    for (const error of errors) {
      if (error.keyword === 'boolean' || (error.keyword !== 'anyOf' && unions.has(error.instancePath))) continue
      const problem = toProblem(doc, file, at, error)
      const key = `${problem.field}|${problem.expected}`
      if (seen.has(key)) continue
      seen.add(key)
      problems.push(layered.relocate(problem))
    }
  } else {
    problems.push(...semanticProblems(raw, doc, file, at, env).map(layered.relocate))
    // Only of a file that is otherwise valid: the file's own mistakes come first.
    if (problems.length === 0 && options.executables === true) {
      const missing = missingExecutables(raw, doc, file, at).map(layered.relocate)
      if (missing.length > 0) throw new ConfigError(missing, 'TRINITY_ERR_EXEC_COMMAND_NOT_FOUND')
    }
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col)
  if (problems.length > 0) throw new ConfigError(problems)
  return resolveConfig(raw as RawConfig, file, env)
}

/** The parser's message, first line only; a few made plainer. */
function yamlMessage(error: YAMLError): string {
  if (error.code === 'TAB_AS_INDENT') return 'tabs are not allowed for indentation; indent with spaces'
  return error.message.split('\n')[0] ?? error.message
}

type Locate = (offset: number) => { line: number; col: number }

function toProblem(doc: Document, file: string, at: Locate, error: SchemaError): ConfigProblem {
  const path = pointerToPath(error.instancePath)
  const params = (error.params ?? {}) as { additionalProperties?: string[]; requiredProperties?: string[] }
  if (params.additionalProperties !== undefined && params.additionalProperties.length > 0) {
    const key = params.additionalProperties[0] ?? ''
    const keyNode = findKey(doc, path, key)
    return {
      file,
      ...at(keyNode?.range?.[0] ?? 0),
      field: fieldName([...path, key]),
      expected: `unknown field (allowed: ${allowedKeys(error)})`,
    }
  }
  const node = nodeAt(doc, path)
  return { file, ...at(node?.range?.[0] ?? 0), field: fieldName(path), expected: expectation(error, doc, path) }
}

function expectation(error: SchemaError, doc: Document, path: (string | number)[]): string {
  const got = describeValue(doc.getIn(path))
  const params = (error.params ?? {}) as Record<string, unknown>
  switch (error.keyword) {
    case 'anyOf': {
      const schema = schemaAt(error.schemaPath) as { anyOf?: { const?: unknown; type?: string; pattern?: string }[]; description?: string }
      const options = (schema?.anyOf ?? []).map((s) => (s.const !== undefined ? JSON.stringify(s.const) : s.pattern !== undefined ? `a string matching ${s.pattern}` : s.type ?? '?'))
      return `expected ${schema?.description ?? `one of ${options.join(', ')}`}, got ${got}`
    }
    case 'required':
      return `missing required field ${JSON.stringify((params['requiredProperties'] as string[] | undefined)?.[0] ?? '')}`
    case 'enum':
      return `expected one of ${((params['allowedValues'] as unknown[] | undefined) ?? []).map((v) => JSON.stringify(v)).join(', ')}, got ${got}`
    case 'pattern':
      return `expected a string matching ${String(params['pattern'])}, got ${got}`
    default:
      return `${error.message.replace(/^must /, 'expected to ')}, got ${got}`
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (isScalar(value)) return JSON.stringify(value.value)
  if (isMap(value)) return 'a mapping'
  if (isSeq(value)) return 'a list'
  return JSON.stringify(value)
}

function schemaAt(pointer: string | undefined): unknown {
  if (pointer === undefined) return undefined
  let node: unknown = ConfigSchema
  for (const part of pointer.replace(/^#\/?/, '').split('/').filter((p) => p !== '')) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[decodeURIComponent(part.replaceAll('~1', '/').replaceAll('~0', '~'))]
  }
  return node
}

function allowedKeys(error: SchemaError): string {
  const schema = schemaAt(error.schemaPath) as { properties?: Record<string, unknown> } | undefined
  return Object.keys(schema?.properties ?? {}).join(', ') || 'none'
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p))
}

function fieldName(path: (string | number)[]): string {
  if (path.length === 0) return '(root)'
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

function nodeAt(doc: Document, path: (string | number)[]): Node | undefined {
  for (let len = path.length; len >= 0; len--) {
    const node = len === 0 ? doc.contents : doc.getIn(path.slice(0, len), true)
    if (node !== undefined && node !== null && typeof node === 'object' && 'range' in node) return node as Node
  }
  return undefined
}

function findKey(doc: Document, path: (string | number)[], key: string): Node | undefined {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path, true)
  if (isMap(parent)) {
    for (const item of parent.items) {
      if (isPair(item) && isScalar(item.key) && String(item.key.value) === key) return item.key
    }
  }
  return nodeAt(doc, path)
}

function semanticProblems(raw: RawConfig, doc: Document, file: string, at: Locate, env: NodeJS.ProcessEnv): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const problem = (path: (string | number)[], expected: string): void => {
    problems.push({ file, ...at(nodeAt(doc, path)?.range?.[0] ?? 0), field: fieldName(path), expected })
  }
  // Ids compare as the strings they resolve to: `2` and "2" are one id.
  const seen = new Map<string, number>()
  raw.instances?.forEach((instance, index) => {
    const id = String(instance.id)
    const first = seen.get(id)
    if (first !== undefined) problem(['instances', index, 'id'], `expected a unique id, "${id}" is already used by instances[${first}]`)
    else seen.set(id, index)
  })
  raw.instances?.forEach((instance, index) => {
    if (instance.adapter === 'http' && instance.url === undefined) problem(['instances', index, 'adapter'], 'expected `url` to be set when adapter is "http"')
    if (instance.adapter === 'exec') {
      if (instance.command === undefined) problem(['instances', index, 'command'], 'expected the program to run for each task when adapter is "exec"')
      // The hub runs an exec instance itself: there is no server to call or probe.
      for (const key of ['url', 'healthUrl'] as const) {
        if (instance[key] !== undefined) problem(['instances', index, key], `expected no ${key} when adapter is "exec" (the hub runs the command itself)`)
      }
    } else {
      for (const key of ['args', 'shell', 'stopTimeout'] as const) {
        if (instance[key] !== undefined) problem(['instances', index, key], `expected only with adapter "exec" (the command \`trinity start\` runs is one shell command line)`)
      }
    }
  })
  if (raw.broker?.mode === 'external' && raw.broker.url === undefined) {
    problem(['broker', 'mode'], 'expected broker.url to be set when mode is "external"')
  }
  if (raw.store?.backend === 'nats-kv') {
    if (raw.store.url === undefined) problem(['store', 'backend'], 'expected store.url (the NATS servers, nats://host:4222,…) with backend "nats-kv"')
    // Standbys on other machines take the coordinator's session over: the bus must outlive the leader.
    if (raw.broker?.mode !== 'external') problem(['store', 'backend'], 'expected broker.mode "external" with backend "nats-kv" (an embedded broker goes down with its hub, so no standby could take over)')
    if (raw.store.username !== undefined && raw.store.password === undefined) problem(['store', 'username'], 'expected store.password with store.username')
    if (raw.store.password !== undefined && raw.store.username === undefined) problem(['store', 'password'], 'expected store.username with store.password')
  } else {
    for (const key of ['url', 'replicas', 'lease', 'username', 'password'] as const) {
      if (raw.store?.[key] !== undefined) problem(['store', key], 'expected only with store.backend "nats-kv"')
    }
  }
  if (raw.broker?.flavor !== undefined && raw.broker.mode !== 'external') {
    problem(['broker', 'flavor'], 'expected only with broker.mode "external" (it names the external broker)')
  }
  // nats-server 2.9 closes the connection of a client that publishes a `.` inside a topic
  // level (src/coordinator/broker-ids.ts): every id below becomes one.
  if (raw.broker?.flavor === 'nats') {
    const noDot = (path: (string | number)[], value: string | number | undefined, what: string): void => {
      if (value !== undefined && String(value).includes('.')) problem(path, `expected ${what} without "." with broker.flavor "nats" (nats-server 2.9 cannot carry it in a topic level), got "${String(value)}"`)
    }
    noDot(['hub', 'topicPrefix'], raw.hub?.topicPrefix, 'a topic prefix')
    raw.instances?.forEach((instance, index) => noDot(['instances', index, 'id'], instance.id, 'an instance id'))
    noDot(['sync', 'computer'], raw.sync?.computer, 'a computer id')
    raw.sync?.peers?.forEach((peer, index) => noDot(['sync', 'peers', index], peer, 'a computer id'))
  }
  const sync = raw.sync
  if (sync?.enabled === true && sync.remote === undefined) problem(['sync', 'enabled'], 'expected sync.remote to be set when sync is enabled')
  const peers = (sync?.peers ?? []).map(String)
  peers.forEach((peer, index) => {
    if (peer === String(sync?.computer ?? '1')) problem(['sync', 'peers', index], `expected the other computers, "${peer}" is sync.computer itself`)
    if (peers.indexOf(peer) !== index) problem(['sync', 'peers', index], `expected unique peers, "${peer}" appears twice`)
  })
  // The PEM files are read when the hub starts; a missing one is a config error now, located.
  for (const [section, tls] of [['hub', raw.hub?.tls], ['broker', raw.broker?.tls]] as const) {
    for (const part of ['cert', 'key'] as const) {
      const path = tls?.[part]
      if (path !== undefined && !existsSync(resolve(path))) problem([section, 'tls', part], `expected a PEM file, ${path} does not exist`)
    }
  }
  const users = new Set<string>()
  raw.broker?.auth?.users?.forEach((user, index) => {
    const username = String(user.username)
    if (users.has(username)) problem(['broker', 'auth', 'users', index, 'username'], `expected a unique username, "${username}" appears twice`)
    users.add(username)
  })
  // A client must be able to have the largest message on its way twice over
  // (the one in its socket, the next behind it) without counting as a slow consumer.
  const limits = raw.limits
  if (limits?.maxClientBuffer !== undefined) {
    const floor = 2 * parseSize(limits.maxPayload ?? DEFAULTS.limits.maxPayload)
    if (parseSize(limits.maxClientBuffer) < floor) {
      problem(['limits', 'maxClientBuffer'], `expected at least twice limits.maxPayload, ${formatSize(floor)}`)
    }
  }
  // A packet bound below the payload bound would cut off a client for a payload the hub accepts.
  if (limits?.maxPacket !== undefined) {
    const floor = parseSize(limits.maxPayload ?? DEFAULTS.limits.maxPayload)
    if (parseSize(limits.maxPacket) < floor) problem(['limits', 'maxPacket'], `expected at least limits.maxPayload, ${formatSize(floor)}`)
  }
  problems.push(...exposureProblems(raw, env).map(({ path, expected }) => ({ file, ...at(nodeAt(doc, path)?.range?.[0] ?? 0), field: fieldName(path), expected })))
  return problems
}

/** Exec instances (not through a shell) whose program is not an executable file, on PATH or at its path. */
function missingExecutables(raw: RawConfig, doc: Document, file: string, at: Locate): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  raw.instances?.forEach((instance, index) => {
    if (instance.adapter !== 'exec' || instance.shell === true || instance.command === undefined) return
    const cwd = resolve(instance.cwd ?? '.')
    if (findExecutable(instance.command, { cwd, path: instance.env?.['PATH'] ?? process.env['PATH'] }) !== null) return
    const where = instance.command.includes('/') ? `in ${cwd}` : 'on PATH'
    const path = ['instances', index, 'command']
    problems.push({
      file, ...at(nodeAt(doc, path)?.range?.[0] ?? 0), field: fieldName(path),
      expected: `expected an executable program for exec instance "${String(instance.id)}", ${JSON.stringify(instance.command)} is not one ${where}`,
    })
  })
  return problems
}


/**
 * For a process's start: the config, or one line per problem on stderr
 * (`file:line:col: field: expected …`) and exit code 2.
 */
export function loadConfigOrExit(explicit: string | undefined, options: LoadOptions = {}): Config {
  try {
    return loadConfigFile(configPath(explicit), process.env, options)
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) process.stderr.write(`${formatProblem(problem)}\n`)
    } else {
      process.stderr.write(`${(err as Error).message}\n`)
    }
    process.exit(EXIT_CONFIG)
  }
}
