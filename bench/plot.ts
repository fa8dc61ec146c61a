import { summarize } from './stats.ts'

export interface PlotRow {
  readonly label: string
  readonly samples: readonly number[]
  readonly color: string
}

const WIDTH = 880
const LABEL = 260
const RIGHT = 30
const ROW = 30
const TOP = 40
const BOTTOM = 46

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * Latency distributions on a logarithmic time axis: one row per series, every sample as a dot, a box
 * from p25 to p75, a bar at p50 and whiskers to p1/p99 (min/max for small samples).
 */
export function latencyPlot(title: string, rows: readonly PlotRow[]): string {
  const all = rows.flatMap((row) => row.samples).filter((x) => x > 0)
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)))
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)))
  const plotWidth = WIDTH - LABEL - RIGHT
  const x = (ms: number) => LABEL + (Math.log10(Math.max(ms, lo) / lo) / Math.log10(hi / lo)) * plotWidth
  const height = TOP + rows.length * ROW + BOTTOM
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ]
  for (let decade = lo; decade <= hi; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const v = decade * step
      if (v > hi) break
      const gx = x(v).toFixed(1)
      const major = step === 1
      out.push(
        `<line x1="${gx}" y1="${TOP - 6}" x2="${gx}" y2="${TOP + rows.length * ROW}" stroke="${major ? '#bbb' : '#eee'}"/>`,
      )
      if (major || rows.length > 0) {
        out.push(
          `<text x="${gx}" y="${TOP + rows.length * ROW + 16}" text-anchor="middle" fill="${major ? '#333' : '#999'}">${tick(v)}</text>`,
        )
      }
    }
  }
  out.push(
    `<text x="${LABEL + plotWidth / 2}" y="${height - 10}" text-anchor="middle">latency (log scale) — box p25–p75, bar p50, whiskers p1–p99, dots: samples</text>`,
  )
  rows.forEach((row, i) => {
    const cy = TOP + i * ROW + ROW / 2
    const s = summarize(row.samples)
    const sorted = [...row.samples].sort((a, b) => a - b)
    const p1 = sorted[Math.floor(0.01 * (sorted.length - 1))] ?? s.min
    out.push(
      `<text x="${LABEL - 8}" y="${cy + 4}" text-anchor="end">${escapeXml(row.label)}</text>`,
      `<line x1="${x(p1).toFixed(1)}" y1="${cy}" x2="${x(s.p99).toFixed(1)}" y2="${cy}" stroke="${row.color}"/>`,
      `<rect x="${x(s.p25).toFixed(1)}" y="${cy - 8}" width="${Math.max(1, x(s.p75) - x(s.p25)).toFixed(1)}" height="16" fill="${row.color}" fill-opacity="0.25" stroke="${row.color}"/>`,
      `<line x1="${x(s.p50).toFixed(1)}" y1="${cy - 10}" x2="${x(s.p50).toFixed(1)}" y2="${cy + 10}" stroke="${row.color}" stroke-width="3"/>`,
    )
    for (const [j, v] of row.samples.entries()) {
      const jitter = ((j * 7919) % 13) - 6
      out.push(
        `<circle cx="${x(v).toFixed(1)}" cy="${(cy + jitter).toFixed(1)}" r="1.6" fill="${row.color}" fill-opacity="0.55"/>`,
      )
    }
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

function tick(ms: number): string {
  if (ms >= 1000) return `${ms / 1000} s`
  if (ms >= 1) return `${ms} ms`
  return `${ms * 1000} µs`
}
