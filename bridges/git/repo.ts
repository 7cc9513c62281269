/**
 * The bridge's own clone, driven with simple-git: one git command at a time
 * (concurrent commands on one clone race on index.lock), never a prompt, and
 * an identity set in the clone itself (a global one would hide its absence).
 *
 * A round never merges or rebases in git: it resets to the fetched remote
 * head and re-applies its own changes (see round.ts), so the clone cannot be
 * left mid-rebase by a conflict. What a kill -9 can leave behind (a stale
 * index.lock, a rebase or merge someone started by hand, half-written or
 * untracked files) is cleared by `recover()` at round start.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { simpleGit, type SimpleGit } from 'simple-git'

/** A git config value in double quotes: backslash and quote escaped ([git-config] Syntax). */
function quote(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

/** Editors and pagers: the bridge never opens one, and simple-git refuses them in the environment. */
const NEVER_NEEDED = new Set(['EDITOR', 'VISUAL', 'PAGER', 'GIT_EDITOR', 'GIT_SEQUENCE_EDITOR', 'GIT_PAGER', 'GIT_EXTERNAL_DIFF'])

export type PushOutcome = { ok: true } | { ok: false; retryable: boolean; error: string }

/** Push failures worth a fetch-and-retry: someone else pushed first, or a ref/index lock was held ([GIT-TRANSPORT.md]). */
const RETRYABLE = /\[rejected\]|Updates were rejected|non-fast-forward|fetch first|cannot lock ref|failed to update ref|index\.lock|Unable to create .*\.lock/i

export class GitRepo {
  readonly dir: string
  private readonly git: SimpleGit

  constructor(dir: string, private readonly remote: string, private readonly branch: string) {
    this.dir = dir
    mkdirSync(dir, { recursive: true })
    // simple-git 4 guards the environment against untrusted input. Ours is the operator's (GIT_SSH_COMMAND,
    // askpass helpers, proxies, CA files) and must reach git; editors and pagers are dropped (never needed:
    // every commit has -m and nothing runs on a terminal), the rest is allowed explicitly.
    const env: Record<string, string> = { LC_ALL: 'C' }
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !NEVER_NEEDED.has(key.toUpperCase())) env[key] = value
    }
    env['GIT_TERMINAL_PROMPT'] = '0'
    const allowEnvironment = Object.keys(env).filter((key) => key.toUpperCase().startsWith('GIT_'))
    this.git = simpleGit({
      baseDir: dir, maxConcurrentProcesses: 1, trimmed: true, allowEnvironment,
      unsafe: { allowUnsafeAskPass: true, allowUnsafeSshCommand: true, allowUnsafeConfigPaths: true, allowUnsafeConfigEnvCount: true, allowUnsafeGitProxy: true, allowUnsafeExec: true, allowUnsafeTemplateDir: true },
    }).env(env)
  }

  private get gitDir(): string {
    return join(this.dir, '.git')
  }

  /** Create the clone if needed (works with the remote unreachable: the first fetch happens in a round). */
  async init(identity: { name: string; email: string }): Promise<void> {
    if (!existsSync(this.gitDir)) await this.git.raw(['init', '-b', this.branch])
    this.recover()
    // One config file write instead of eight `git config` processes (each costs ~50 ms through simple-git).
    const config = join(this.gitDir, 'config')
    const base = readFileSync(config, 'utf8').split(/^# trinity bridge$/m)[0] ?? ''
    writeFileSync(config, `${base.trimEnd()}\n# trinity bridge\n${[
      '[user]', `\tname = ${quote(identity.name)}`, `\temail = ${quote(identity.email)}`,
      // Bodies must reach the other side byte for byte.
      '[core]', '\tautocrlf = false', '\tsafecrlf = false',
      '[gc]', '\tauto = 0',
      '[commit]', '\tgpgsign = false',
      '[remote "origin"]', `\turl = ${quote(this.remote)}`, `\tfetch = +refs/heads/${this.branch}:refs/remotes/origin/${this.branch}`,
    ].join('\n')}\n`)
    await this.git.raw(['symbolic-ref', 'HEAD', `refs/heads/${this.branch}`])
  }

  /**
   * Clear what an interrupted process can leave. Only safe while no git
   * command of ours runs on this clone: the bridge runs one round at a time
   * and holds the workdir's pid lock.
   */
  recover(): boolean {
    let recovered = false
    for (const leftover of ['index.lock', 'HEAD.lock', `refs/heads/${this.branch}.lock`, 'rebase-merge', 'rebase-apply', 'MERGE_HEAD', 'CHERRY_PICK_HEAD']) {
      const path = join(this.gitDir, leftover)
      if (existsSync(path)) {
        rmSync(path, { recursive: true, force: true })
        recovered = true
      }
    }
    return recovered
  }

  /** After a recovery: make HEAD the branch again (a rebase leaves it detached) and drop untracked files. */
  async clean(): Promise<void> {
    await this.git.raw(['symbolic-ref', 'HEAD', `refs/heads/${this.branch}`])
    await this.git.raw(['clean', '-fdx'])
  }

  /** Fetch the branch; the ref of its head, or null when the remote has no such branch yet. Throws when the remote is unreachable. */
  async fetch(): Promise<string | null> {
    const ref = `refs/remotes/origin/${this.branch}`
    try {
      await this.git.raw(['fetch', '--no-tags', '--verbose', 'origin', `+refs/heads/${this.branch}:${ref}`])
    } catch (err) {
      if (/couldn't find remote ref/i.test((err as Error).message)) {
        await this.git.raw(['update-ref', '-d', ref]).catch(() => undefined)
        return null
      }
      throw err
    }
    return ref
  }

  /** Make the branch, index and working tree exactly `head` (or empty when the remote branch does not exist yet). */
  async resetTo(head: string | null): Promise<void> {
    if (head !== null) {
      await this.git.raw(['reset', '--hard', head])
      return
    }
    await this.git.raw(['update-ref', '-d', 'HEAD']).catch(() => undefined)
    await this.git.raw(['read-tree', '--empty'])
    await this.git.raw(['clean', '-fdx'])
  }

  /**
   * Commit everything under `path`; false when there was nothing to commit.
   * Without new files, `commit --all` stages the changes itself: one git process instead of two.
   */
  async commit(path: string, message: string, newFiles: boolean): Promise<boolean> {
    if (newFiles) await this.git.raw(['add', '--all', '--verbose', '--', path])
    try {
      await this.git.raw(['commit', '--no-verify', ...(newFiles ? [] : ['--all']), '-m', message])
      return true
    } catch (err) {
      if (/nothing to commit|nothing added to commit/i.test((err as Error).message)) return false
      throw err
    }
  }

  async push(): Promise<PushOutcome> {
    try {
      await this.git.raw(['push', 'origin', `HEAD:refs/heads/${this.branch}`])
      return { ok: true }
    } catch (err) {
      const error = (err as Error).message.trim()
      return { ok: false, retryable: RETRYABLE.test(error), error }
    }
  }
}
