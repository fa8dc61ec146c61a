/**
 * Time as the lock algorithm sees it. Safety decisions use only `now()`, a monotonic clock, never the
 * wall clock (which can jump); `wallNow()` only fills the informational `acquireTime`/`renewTime`.
 * Timers are the global `setTimeout`/`clearTimeout`, so fake timers drive both in tests.
 */
export interface Clock {
  /** Monotonic milliseconds (fractions allowed), like `performance.now()`. */
  now(): number
  /** Wall-clock epoch milliseconds, like `Date.now()`. */
  wallNow(): number
}

export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  wallNow: () => performance.timeOrigin + performance.now(),
})

/** Structured logging hooks; the SDK is silent unless given one. */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void
  info?(message: string, fields?: Record<string, unknown>): void
  warn?(message: string, fields?: Record<string, unknown>): void
  error?(message: string, fields?: Record<string, unknown>): void
}

export const silentLogger: Logger = Object.freeze({})
