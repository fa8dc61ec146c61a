/**
 * Node turns a timer delay above 2^31 − 1 ms (about 24.8 days) into 1 ms, with only a warning: a
 * deadline that far away would fire at once, and a renewal loop would spin. Every timer in kube-locks
 * goes through {@link setClampedTimeout}; a caller whose deadline lies beyond the clamp re-checks its
 * clock when the timer fires and arms it again.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** `setTimeout` with the delay clamped to [0, {@link MAX_TIMER_MS}]; NaN counts as 0. */
export function setClampedTimeout(callback: () => void, ms: number): ReturnType<typeof setTimeout> {
  return setTimeout(callback, clampDelay(ms))
}

export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0
  return Math.min(ms, MAX_TIMER_MS)
}

/**
 * A request timeout, armed when `start()` is first called (later calls return the same signal): the
 * signal aborts with `reason()` after `ms`. `clear()` disarms it; call it when the request is done.
 */
export function requestTimer(ms: number, reason: () => unknown): { start(): AbortSignal; clear(): void } {
  const controller = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  return {
    start: () => {
      timer ??= setClampedTimeout(() => controller.abort(reason()), ms)
      return controller.signal
    },
    clear: () => clearTimeout(timer),
  }
}
