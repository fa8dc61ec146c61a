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
