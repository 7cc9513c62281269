/**
 * `npm run bench`: every figure beside a baseline measured in the same run,
 * because these machines are noisy. Sizes can be scaled with BENCH_SCALE.
 */
import { benchHub, type Row } from './hub.js'

const scale = Number(process.env['BENCH_SCALE'] ?? '1')

function table(title: string, rows: Row[]): string {
  const header = ['measure', 'Trinity', 'baseline', 'baseline value', 'vs baseline']
  const lines = rows.map((r) => [r.name, r.value, r.baselineName, r.baseline, r.ratio])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`
  return [`\n### ${title}`, fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n')
}

const started = new Date().toISOString()
console.log(`# trinity bench, ${started}, node ${process.version}, scale ${scale}`)
console.log(table('hub core', await benchHub({ latencyN: Math.round(1000 * scale), throughputN: Math.round(20_000 * scale) })))
