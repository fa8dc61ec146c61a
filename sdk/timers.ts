import { LockUnavailableError } from './errors.ts'

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

/**
 * A duration spread uniformly over ±50 % of `ms`, so that retrying processes do not stay in step.
 * The same as {@link backoff} on the first attempt.
 */
export function jitter(ms: number, random: () => number = Math.random): number {
  return ms * (0.5 + random())
}

export interface BackoffOptions {
  /** The delay of the first attempt, before jitter. */
  readonly baseMs: number
  /**
   * The delay doubles per attempt up to this multiple of `baseMs`.
   * @default 8
   */
  readonly maxFactor?: number
  /**
   * The delay is spread uniformly over ±`spread` of itself.
   * @default 0.5
   */
  readonly spread?: number
  /** A lower bound after jitter, such as a server's `Retry-After`. @default 0 */
  readonly atLeastMs?: number | undefined
  /** @default Math.random */
  readonly random?: (() => number) | undefined
}

/**
 * The delay before retry number `attempt` (1 for the first retry): `baseMs` doubling per attempt up to
 * `maxFactor` × `baseMs`, spread by ±`spread` so that retrying processes do not stay in step, and never
 * below `atLeastMs`. The one backoff of kube-locks: the wait loop, the watch hub and the controller's
 * queue use it with their own bases.
 */
export function backoff(attempt: number, options: BackoffOptions): number {
  const { baseMs, maxFactor = 8, spread = 0.5, atLeastMs = 0, random = Math.random } = options
  const factor = Math.min(2 ** (attempt - 1), maxFactor)
  return Math.max(baseMs * factor * (1 - spread + 2 * spread * random()), atLeastMs)
}

/**
 * The request deadline of kube-locks: a {@link requestTimer} of `ms` whose signal aborts with an
 * outcome-unknown `LockUnavailableError` — the same error a request that the server did not answer in
 * time fails with, so callers branch on one error whichever side gave up. A write that ends this way
 * may have applied.
 */
export function requestDeadline(
  ms: number,
  server: string,
  what = 'did not answer',
): { start(): AbortSignal; clear(): void } {
  return requestTimer(
    ms,
    () =>
      new LockUnavailableError({
        server,
        problem: `${what} within ${Math.round(ms) / 1000} s`,
        outcomeUnknown: true,
      }),
  )
}

/**
 * Runs `request` under a {@link requestDeadline} of `ms`, and aborted by `signal` too if given; the
 * timer is cleared when the request settles.
 */
export async function withRequestDeadline<T>(
  request: (signal: AbortSignal) => Promise<T>,
  options: { readonly ms: number; readonly server: string; readonly signal?: AbortSignal | undefined },
): Promise<T> {
  const timer = requestDeadline(options.ms, options.server)
  try {
    const deadline = timer.start()
    return await request(
      options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal]),
    )
  } finally {
    timer.clear()
  }
}

/** A sleep that ends early on `notify()` (a notification while awake is kept for the next sleep). */
export class Wakeup {
  #pending = false
  #wake: (() => void) | undefined

  notify(): void {
    if (this.#wake) this.#wake()
    else this.#pending = true
  }

  /** Resolves `true` if notified, `false` when `ms` passed; rejects with the reason of an aborted signal. */
  sleep(ms: number, signals: readonly AbortSignal[], wakeOnNotify: boolean): Promise<boolean> {
    for (const signal of signals) signal.throwIfAborted()
    if (wakeOnNotify && this.#pending) {
      this.#pending = false
      return Promise.resolve(true)
    }
    return new Promise<boolean>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer)
        for (const signal of signals) signal.removeEventListener('abort', onAbort)
        this.#wake = undefined
      }
      const onAbort = (event: Event) => {
        cleanup()
        reject((event.target as AbortSignal).reason)
      }
      for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true })
      if (wakeOnNotify) {
        this.#wake = () => {
          cleanup()
          resolve(true)
        }
      }
      if (Number.isFinite(ms)) {
        // Long waits are cut into timer-sized pieces; the caller loops and re-checks the clock.
        timer = setClampedTimeout(() => {
          cleanup()
          resolve(false)
        }, ms)
      }
    })
  }

  dispose(): void {
    this.#wake = undefined
    this.#pending = false
  }
}
