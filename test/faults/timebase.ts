/**
 * The one timebase of a fault run. Workers stamp events with `process.hrtime` (CLOCK_MONOTONIC, shared
 * by every process on the host); the coordinator puts them on its own `performance.now()` scale, which
 * Node derives from the same clock minus a constant. The constant is measured here, and so is the error
 * of that measurement: it bounds how far two stamps compared by the checker can be off.
 */

export interface Timebase {
  /** `process.hrtime` minus `performance.now()`, in ms. */
  readonly offsetMs: number
  /** Bound of the error of `offsetMs`, in ms: half the tightest bracket of the readings. */
  readonly errorMs: number
}

const hrtimeMs = () => Number(process.hrtime.bigint()) / 1e6

/**
 * Reads hrtime, `performance.now()`, hrtime again, `samples` times, and keeps the tightest bracket: the
 * `performance.now()` reading was taken between the two hrtime readings, so the offset is their midpoint
 * minus it, off by at most half their distance.
 */
export function measureTimebase(samples = 500): Timebase {
  let best = { offsetMs: 0, errorMs: Number.POSITIVE_INFINITY }
  for (let i = 0; i < samples; i++) {
    const before = hrtimeMs()
    const now = performance.now()
    const after = hrtimeMs()
    const errorMs = (after - before) / 2
    if (errorMs < best.errorMs) best = { offsetMs: (before + after) / 2 - now, errorMs }
  }
  return best
}

export const TIMEBASE: Timebase = measureTimebase()

/** Coordinator time (`performance.now()`) of a worker's `process.hrtime` reading, in ms. */
export function toLocal(hrtimeMs: number): number {
  return hrtimeMs - TIMEBASE.offsetMs
}

/**
 * How far apart two stamps on the timebase may be from where they belong: each may be off by the error
 * of the offset, so twice it (at least 1 µs, the resolution the checks are written for).
 */
export function overlapToleranceMs(timebase: Timebase = TIMEBASE): number {
  return Math.max(2 * timebase.errorMs, 0.001)
}
