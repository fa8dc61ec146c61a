/**
 * What the demo's service processes tell the demo runner, over the Node IPC channel.
 *
 * Every time is in milliseconds of `CLOCK_MONOTONIC` (`process.hrtime`), which every process on one
 * machine shares: reports from different processes can be put on one timeline without trusting any
 * wall clock.
 */

/** Milliseconds on the machine-wide monotonic clock. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6
}

/** How a process holds its lock: alone, as one of `limit` holders of a semaphore, or as a reader. */
export type LockMode =
  | { readonly kind: 'exclusive' }
  | { readonly kind: 'semaphore'; readonly limit: number }
  | { readonly kind: 'shared' }

export type Report =
  /** The process created its lock client and waits for `start`; `at` checks the shared timebase. */
  | { readonly type: 'ready'; readonly at: number }
  /**
   * The body of `withLock()` started. `requestedAt` is when the process asked for the lock; `expires`
   * bounds how long the lock can be valid (used only if the process never reports the end).
   */
  | {
      readonly type: 'acquired'
      readonly lock: string
      readonly mode: LockMode
      readonly holder: string
      readonly token: string
      readonly requestedAt: number
      readonly at: number
      readonly expires: number
    }
  /**
   * The holder stopped relying on the lock: its body finished and it is about to release (`released`),
   * or its signal fired because the lock expired (`expired`) or was lost otherwise (`lost`).
   */
  | {
      readonly type: 'ended'
      readonly lock: string
      readonly holder: string
      readonly how: 'released' | 'expired' | 'lost'
      readonly at: number
    }
  /** Work that outlived its lock's signal finished and threw its result away instead of committing it. */
  | { readonly type: 'dropped'; readonly lock: string; readonly holder: string; readonly at: number }
  /** `withLock()` gave up with `LockTimeoutError` (at once when `timeout` is 0). */
  | {
      readonly type: 'timeout'
      readonly lock: string
      readonly timeout: number
      readonly heldBy: string | undefined
      readonly requestedAt: number
      readonly at: number
    }
  /** Anything else that went wrong; the process carries on. */
  | { readonly type: 'error'; readonly message: string; readonly at: number }

export type Command = { readonly type: 'start' } | { readonly type: 'stop' }
