/**
 * The demo fleet's work: small, real, deterministic functions, one per seed
 * task type. Pure (no I/O but build_project's workspace), so tests check
 * results exactly.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { freemem, loadavg, totalmem, uptime } from 'node:os'
import { join } from 'node:path'
import { preview } from '../contract/task-summary.js'

const text = (content: unknown): string => (typeof content === 'string' ? content : JSON.stringify(content ?? ''))

/** analyze_data: summary statistics of the numbers in the content. */
export function analyzeData(content: unknown): { count: number; sum: number; mean: number | null; median: number | null; min: number | null; max: number | null; stddev: number | null } {
  const numbers = (text(content).match(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi) ?? []).map(Number).filter(Number.isFinite)
  const count = numbers.length
  if (count === 0) return { count, sum: 0, mean: null, median: null, min: null, max: null, stddev: null }
  const sorted = [...numbers].sort((a, b) => a - b)
  const sum = numbers.reduce((a, b) => a + b, 0)
  const mean = sum / count
  const mid = Math.floor(count / 2)
  const median = count % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
  const stddev = Math.sqrt(numbers.reduce((a, n) => a + (n - mean) ** 2, 0) / count)
  return { count, sum, mean, median, min: sorted[0] as number, max: sorted[count - 1] as number, stddev }
}

/** pattern_analysis: the most frequent words and word pairs (bigrams). */
export function patternAnalysis(content: unknown, top = 5): { words: [string, number][]; bigrams: [string, number][] } {
  const words = text(content).toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []
  const rank = (items: string[]): [string, number][] => {
    const counts = new Map<string, number>()
    for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1)
    return [...counts].filter(([, n]) => n > 1).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top)
  }
  return { words: rank(words), bigrams: rank(words.slice(1).map((w, i) => `${words[i]} ${w}`)) }
}

const TRACK_USER_EXPECTS = 'expected a JSON list of {"user", "page"} events, or plain text with one "<user> <page>" visit per line'

/**
 * track_user: visitor events aggregated per user and page. Content is JSON
 * (`[{user, page}]`, one event object, or a string holding either) or plain
 * text, one visit per line: `alice /pricing`. Anything else fails saying what
 * is expected, rather than counting nothing.
 */
export function trackUser(content: unknown): { events: number; users: number; pages: Record<string, number>; perUser: Record<string, number> } {
  let events: unknown = content
  if (typeof content === 'string') {
    try { events = JSON.parse(content) } catch { events = visitLines(content) }
  }
  const list = Array.isArray(events) ? events : [events]
  list.forEach((e, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new Error(`track_user: ${Array.isArray(events) ? `event ${i}` : 'content'} is ${JSON.stringify(e)?.slice(0, 60)}; ${TRACK_USER_EXPECTS}`)
  })
  const pages: Record<string, number> = {}
  const perUser: Record<string, number> = {}
  for (const e of list as { user?: unknown; page?: unknown }[]) {
    const user = text(e.user ?? 'anonymous')
    const page = text(e.page ?? '/')
    pages[page] = (pages[page] ?? 0) + 1
    perUser[user] = (perUser[user] ?? 0) + 1
  }
  return { events: list.length, users: Object.keys(perUser).length, pages, perUser }
}

/** The plain-text form of track_user: `<user> <page>` per line, blank lines skipped. */
function visitLines(text: string): { user: string; page: string }[] {
  const lines = text.split('\n').map((line, i) => ({ n: i + 1, words: line.trim().split(/\s+/).filter((w) => w !== '') })).filter((l) => l.words.length > 0)
  if (lines.length === 0) throw new Error(`track_user: the content is empty; ${TRACK_USER_EXPECTS}`)
  return lines.map(({ n, words }) => {
    const [user, page] = words
    if (words.length !== 2 || user === undefined || page === undefined) throw new Error(`track_user: line ${n} is ${JSON.stringify(words.join(' ').slice(0, 60))}; ${TRACK_USER_EXPECTS}`)
    return { user, page }
  })
}

/** monitor_system: host metrics, and the hub's own summary when it answers (`token`: for a hub with hub.auth.tokens). */
export async function monitorSystem(hubUrl: string | undefined, token?: string): Promise<{ host: { loadavg1: number; freeMemMb: number; totalMemMb: number; uptimeS: number }; hub: unknown }> {
  const host = { loadavg1: loadavg()[0] ?? 0, freeMemMb: Math.round(freemem() / 1048576), totalMemMb: Math.round(totalmem() / 1048576), uptimeS: Math.round(uptime()) }
  let hub: unknown = null
  const headers: Record<string, string> = token === undefined || token === '' ? {} : { authorization: `Bearer ${token}` }
  if (hubUrl !== undefined) hub = await fetch(`${hubUrl}/`, { headers, signal: AbortSignal.timeout(2000) }).then((r) => r.json()).catch(() => null)
  return { host, hub }
}

/** build_project: a project scaffold written into the workspace. */
export async function buildProject(content: unknown, workspace: string, taskId: string): Promise<{ path: string; files: string[] }> {
  const name = (text(content).toLowerCase().match(/[a-z0-9]+/g) ?? ['project']).slice(0, 4).join('-')
  const root = join(workspace, `${name}-${taskId.slice(0, 8)}`)
  const files: Record<string, string> = {
    'README.md': `# ${name}\n\n${text(content)}\n`,
    'package.json': `${JSON.stringify({ name, version: '0.1.0', type: 'module', scripts: { start: 'node src/index.js', test: 'node --test' } }, null, 2)}\n`,
    'src/index.js': `console.log(${JSON.stringify(`hello from ${name}`)})\n`,
    'test/index.test.js': "import { test } from 'node:test'\ntest('starts', () => {})\n",
  }
  for (const [file, body] of Object.entries(files)) {
    await mkdir(join(root, file, '..'), { recursive: true })
    await writeFile(join(root, file), body)
  }
  return { path: root, files: Object.keys(files) }
}

/**
 * bug_fix, deployment, general: a written plan. The subject is the content's
 * preview, so a plan stays a few hundred bytes whatever the content weighs
 * (a 2 MB content once made an 18 MB record); `general` names it once.
 */
export function writePlan(type: string, content: unknown): { plan: string[] } {
  const subject = preview(text(content).trim()) || 'the request'
  const steps: Record<string, string[]> = {
    bug_fix: ['Reproduce', 'Write a failing test', 'Find the cause', 'Fix it at the right depth', 'Run the suite'],
    deployment: ['Build from a clean clone', 'Run the suite', 'Back up data', 'Deploy', 'Watch health and logs', 'Roll back if unhealthy'],
  }
  const own = steps[type]
  if (own === undefined) return { plan: [`1. Understand the request: ${subject}`, '2. Break it into steps', '3. Do the work', '4. Report the result'] }
  return { plan: own.map((step, i) => `${i + 1}. ${step}: ${subject}`) }
}
