/**
 * Durations as kubectl shows them in its AGE column (`5s`, `3m20s`, `4h`, `2d3h`), so that `locks list`
 * reads like `kubectl get`. Up to two minutes in seconds, then coarser units with one sub-unit while it
 * still tells something.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000)
  // A clock a second ahead of the server's is still "now".
  if (seconds < -1) return '<invalid>'
  if (seconds < 0) return '0s'
  if (seconds < 120) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 10) return withRest(minutes, 'm', seconds % 60, 's')
  if (minutes < 180) return `${minutes}m`
  const hours = Math.floor(minutes / 60)
  if (hours < 8) return withRest(hours, 'h', minutes % 60, 'm')
  if (hours < 48) return `${hours}h`
  const days = Math.floor(hours / 24)
  if (days < 8) return withRest(days, 'd', hours % 24, 'h')
  if (days < 365 * 2) return `${days}d`
  const years = Math.floor(days / 365)
  if (years < 8) return withRest(years, 'y', days % 365, 'd')
  return `${years}y`
}

function withRest(value: number, unit: string, rest: number, restUnit: string): string {
  return rest === 0 ? `${value}${unit}` : `${value}${unit}${rest}${restUnit}`
}

/**
 * Parses a number of seconds given on the command line (`--expires 30`, `--timeout 0.5`). Returns a
 * message for the usage error when the value is not acceptable.
 */
export function parseSeconds(
  text: string,
  limits: { readonly min: number; readonly allowInfinity?: boolean; readonly positive?: boolean },
): number | string {
  const trimmed = text.trim()
  if (limits.allowInfinity && /^(inf|infinity)$/i.test(trimmed)) return Number.POSITIVE_INFINITY
  const value = /^[0-9]+(\.[0-9]+)?$/.test(trimmed) ? Number(trimmed) : Number.NaN
  const ok = Number.isFinite(value) && (limits.positive ? value > limits.min : value >= limits.min)
  if (ok) return value
  const bound = limits.positive ? `> ${limits.min}` : `>= ${limits.min}`
  const inf = limits.allowInfinity ? ' (or `inf` to wait forever)' : ''
  return `expected a number of seconds ${bound}${inf}, got \`${text}\``
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = Object.freeze({
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000_001,
})

/**
 * Parses a duration as kubectl's `--request-timeout` takes it: a number of seconds (`0`, `30`, `0.5`), or
 * a Go duration (`30s`, `1m`, `1h2m3s`, `500ms`). Returns seconds, or a message for the usage error.
 */
export function parseDuration(text: string): number | string {
  const trimmed = text.trim()
  if (/^[0-9]+(\.[0-9]+)?$/.test(trimmed)) return Number(trimmed)
  const part = /([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(h|ms|m|s|us|µs|ns)/gy
  let ms = 0
  let end = 0
  for (let match = part.exec(trimmed); match !== null; match = part.exec(trimmed)) {
    ms += Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? ''] ?? Number.NaN)
    end = part.lastIndex
  }
  if (trimmed !== '' && end === trimmed.length && Number.isFinite(ms)) return ms / 1000
  return `expected a duration such as \`0\`, \`30\` (seconds), \`30s\`, \`1m\` or \`1h2m3s\`, got \`${text}\``
}
