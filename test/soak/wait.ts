import { setTimeout as delay } from 'node:timers/promises'

/** Waits `ms`, or less if `signal` aborts (then resolves, never rejects: callers check the signal). */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await delay(Math.max(0, ms), undefined, { signal }).catch(() => {})
}

/** Waits until `done()` holds, `ms` passed or `signal` aborted, whichever comes first. */
export async function until(done: () => boolean, ms: number, signal: AbortSignal): Promise<void> {
  const deadline = performance.now() + ms
  while (!done() && !signal.aborted) {
    const left = deadline - performance.now()
    if (left <= 0) return
    await sleep(Math.min(left, 50), signal)
  }
}
