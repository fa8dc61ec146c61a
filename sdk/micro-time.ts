/**
 * Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits. The API server rejects the
 * three digits of `Date.prototype.toISOString()` with 400.
 */

const MICRO_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/

/** Formats epoch milliseconds (fractions kept down to the microsecond) as a MicroTime string. */
export function formatMicroTime(epochMs: number): string {
  if (!Number.isFinite(epochMs)) {
    throw new TypeError(`Expected a finite number of epoch milliseconds, got ${String(epochMs)}`)
  }
  const totalMicros = Math.round(epochMs * 1000)
  const seconds = Math.floor(totalMicros / 1_000_000)
  const micros = totalMicros - seconds * 1_000_000
  const whole = new Date(seconds * 1000).toISOString().slice(0, 19)
  return `${whole}.${String(micros).padStart(6, '0')}Z`
}

/** Parses a MicroTime (or any RFC 3339 time) into epoch milliseconds with microsecond precision. */
export function parseMicroTime(value: string): number {
  const match = MICRO_TIME.exec(value)
  const date = match?.[1]
  if (match === null || date === undefined) {
    throw new TypeError(`Expected an RFC 3339 time, got ${JSON.stringify(value)}`)
  }
  const fraction = (match[2] ?? '').padEnd(6, '0').slice(0, 6)
  const base = Date.parse(`${date}${match[3]}`)
  if (Number.isNaN(base)) throw new TypeError(`Expected an RFC 3339 time, got ${JSON.stringify(value)}`)
  return base + Number(fraction) / 1000
}
