import type { Clock } from '../clock.ts'

/** A clock that follows `Date.now()`, which fake timers control. */
export const fakeClock: Clock = Object.freeze({
  now: () => Date.now(),
  wallNow: () => Date.now(),
})

/** Lets chains of promise callbacks run without advancing (fake) time. */
export async function settle(rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve()
}

export interface Tracked<T> {
  readonly promise: Promise<T>
  readonly status: 'pending' | 'fulfilled' | 'rejected'
  readonly value: T | undefined
  readonly error: unknown
  /** `Date.now()` when it settled. */
  readonly settledAt: number | undefined
}

/** Observes a promise's state synchronously; also keeps a rejection from being unhandled. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked = {
    promise,
    status: 'pending' as Tracked<T>['status'],
    value: undefined as T | undefined,
    error: undefined as unknown,
    settledAt: undefined as number | undefined,
  }
  promise.then(
    (value) => {
      tracked.status = 'fulfilled'
      tracked.value = value
      tracked.settledAt = Date.now()
    },
    (error: unknown) => {
      tracked.status = 'rejected'
      tracked.error = error
      tracked.settledAt = Date.now()
    },
  )
  return tracked
}

/** Uniform numbers in [0, 1) from a seed (mulberry32), so that a failing seed can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
