import { setClampedTimeout } from '../sdk/internal.ts'

/**
 * A deduplicating work queue with delayed re-adds, after client-go's workqueue: a key is handed to at
 * most one worker at a time; a key added while a worker holds it runs again once that worker is done;
 * `addAfter` keeps only the earliest pending deadline per key. Timers are the global ones, so fake
 * timers drive the queue in tests.
 */
export class WorkQueue {
  readonly #ready = new Set<string>()
  readonly #processing = new Set<string>()
  readonly #dirty = new Set<string>()
  readonly #delayed = new Map<
    string,
    { readonly due: number; readonly timer: ReturnType<typeof setTimeout> }
  >()
  readonly #waiters: Array<(key: string | undefined) => void> = []
  readonly #now: () => number
  #shutDown = false

  constructor(now: () => number) {
    this.#now = now
  }

  /** Keys waiting to run now (not counting delayed or in-progress ones). */
  get length(): number {
    return this.#ready.size
  }

  /** Keys with a pending delayed add. */
  get delayedCount(): number {
    return this.#delayed.size
  }

  add(key: string): void {
    if (this.#shutDown) return
    this.#cancelDelay(key)
    if (this.#processing.has(key)) {
      this.#dirty.add(key)
      return
    }
    const waiter = this.#waiters.shift()
    if (waiter) {
      this.#processing.add(key)
      waiter(key)
      return
    }
    this.#ready.add(key)
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#shutDown) return
    if (!(delayMs > 0)) {
      this.add(key)
      return
    }
    const due = this.#now() + delayMs
    const pending = this.#delayed.get(key)
    if (pending !== undefined && pending.due <= due) return
    if (pending !== undefined) clearTimeout(pending.timer)
    // A clamped timer fires early for a later deadline, and simply re-arms.
    const timer = setClampedTimeout(() => {
      this.#delayed.delete(key)
      const remaining = due - this.#now()
      if (remaining > 1) this.addAfter(key, remaining)
      else this.add(key)
    }, delayMs)
    this.#delayed.set(key, { due, timer })
  }

  /** Drops a key's pending delayed add, if any (the key is gone). */
  forget(key: string): void {
    this.#cancelDelay(key)
  }

  /** The next key to work on, or `undefined` once the queue is shut down. Call `done(key)` after. */
  get(): Promise<string | undefined> {
    if (this.#shutDown) return Promise.resolve(undefined)
    for (const key of this.#ready) {
      this.#ready.delete(key)
      this.#processing.add(key)
      return Promise.resolve(key)
    }
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  done(key: string): void {
    this.#processing.delete(key)
    if (this.#dirty.delete(key)) this.add(key)
  }

  /** Clears every timer and wakes every waiting worker with `undefined`. Idempotent. */
  shutDown(): void {
    this.#shutDown = true
    for (const { timer } of this.#delayed.values()) clearTimeout(timer)
    this.#delayed.clear()
    this.#ready.clear()
    this.#dirty.clear()
    for (const waiter of this.#waiters.splice(0)) waiter(undefined)
  }

  #cancelDelay(key: string): void {
    const pending = this.#delayed.get(key)
    if (pending === undefined) return
    clearTimeout(pending.timer)
    this.#delayed.delete(key)
  }
}
