import type { Clock, Logger } from './clock.ts'
import {
  LeaseConflictError,
  LeaseNotFoundError,
  LockError,
  LockLostError,
  LockUnavailableError,
} from './errors.ts'
import type { LeaseRecord } from './lease-record.ts'
import { freedRecord, isManaged } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import { formatMicroTime } from './micro-time.ts'
import { backoff, requestDeadline, setClampedTimeout } from './timers.ts'

/** The handle `acquire()` returns. Holding it means holding the lock until `signal` aborts. */
export interface Lock extends AsyncDisposable {
  /** The lock name as given (or the service name). */
  readonly name: string
  /** The Lease object's name (see `leaseNameFor`). */
  readonly leaseName: string
  readonly namespace: string
  /** This acquisition's identity, the lease's `holderIdentity`. */
  readonly holder: string
  /**
   * The resourceVersion of the write that acquired the lock, as a decimal string. It increases strictly
   * with every acquisition of the same lock; compare tokens with `compareResourceVersions` (BigInt),
   * never with `Number()`.
   */
  readonly fencingToken: string
  /**
   * Aborts before anyone else may acquire the lock: at the local deadline (`expires` minus the safety
   * margin after the last successful write), when a renewal may have failed, or on release. The
   * `reason` is a `LockLostError`, or an `AbortError` on release.
   */
  readonly signal: AbortSignal
  /**
   * Whether the lock is valid at this instant, judged on the monotonic clock. Unlike `signal.aborted`,
   * it is right even in the first moments after the process was paused (SIGSTOP, a long GC) past its
   * deadline, before the deadline timer has had a chance to run: reading it then aborts the signal.
   * Check it right before a side effect that must not happen without the lock.
   */
  readonly valid: boolean
  /**
   * Marks the lease free for the next waiter. Idempotent; never throws: if the lease cannot be written
   * it simply expires. The signal aborts first.
   */
  release(): Promise<void>
}

export interface HeldLockContext {
  readonly store: LeaseStore
  readonly clock: Clock
  readonly logger: Logger
  readonly lockName: string
  readonly record: LeaseRecord
  readonly sentAt: number
  readonly expiresMs: number
  readonly safetyMarginMs: number
  readonly renew: boolean
  readonly requestTimeoutMs: number
  readonly retryIntervalMs: number
  readonly onReleased: (lock: HeldLock) => void
  /**
   * The lease is this holder's own record (a shared or semaphore holder, see `sdk/holders.ts`):
   * release deletes it rather than marking it free.
   * @default false
   */
  readonly discard?: boolean | undefined
  /**
   * The record a renewal writes.
   * @default the record with a new `renewTime`
   */
  readonly renewal?: ((record: LeaseRecord, wallNow: number) => LeaseRecord) | undefined
  /**
   * The holder's fencing token.
   * @default the resourceVersion of `record`, the acquiring write
   */
  readonly fencingToken?: string | undefined
}

/**
 * Invariant: `signal` aborts no later than `sentAt(last successful write) + expires − safetyMargin` on
 * the monotonic clock, and always before the release write is sent.
 */
export class HeldLock implements Lock {
  readonly name: string
  readonly leaseName: string
  readonly namespace: string
  readonly holder: string
  readonly fencingToken: string
  readonly #controller = new AbortController()
  readonly #ctx: HeldLockContext
  #record: LeaseRecord
  #deadline: number
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined
  #renewTimer: ReturnType<typeof setTimeout> | undefined
  /** Monotonic time of the next renewal; its timer may fire earlier when the delay was clamped. */
  #renewAt = Number.POSITIVE_INFINITY
  #renewing: Promise<void> | undefined
  #released: Promise<void> | undefined
  /** Monotonic time at which the last successful write was sent. */
  #lastSentAt: number
  /** Renewing while {@link HeldLock.renewWhile} runs, whatever `renew` says. */
  #forceRenew = false
  /** Annotations that this holder's next writes leave out (see {@link HeldLock.dropAnnotations}). */
  #dropped: readonly string[] = []

  constructor(ctx: HeldLockContext) {
    this.#ctx = ctx
    this.#record = ctx.record
    this.name = ctx.lockName
    this.leaseName = ctx.record.name
    this.namespace = ctx.record.namespace
    this.holder = ctx.record.holderIdentity ?? ''
    this.fencingToken = ctx.fencingToken ?? ctx.record.resourceVersion
    this.#lastSentAt = ctx.sentAt
    this.#deadline = ctx.sentAt + ctx.expiresMs - ctx.safetyMarginMs
    this.#scheduleDeadline()
    if (ctx.renew) this.#scheduleRenewal(ctx.sentAt)
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  get valid(): boolean {
    // Past the deadline, this aborts the signal at once rather than when the overdue timer runs.
    if (!this.#controller.signal.aborted && this.#ctx.clock.now() >= this.#deadline) this.#scheduleDeadline()
    return !this.#controller.signal.aborted
  }

  /** Monotonic milliseconds at which the signal aborts unless renewed. */
  get deadline(): number {
    return this.#deadline
  }

  release(): Promise<void> {
    this.#released ??= this.#release()
    return this.#released
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release()
  }

  /**
   * Leaves `keys` out of the lease's annotations from the next write on (a renewal or the release).
   * A release that has to read the lease again first keeps them.
   */
  dropAnnotations(keys: readonly string[]): void {
    this.#dropped = keys
  }

  #withoutDropped(record: LeaseRecord): LeaseRecord {
    if (this.#dropped.length === 0) return record
    const annotations = { ...record.annotations }
    for (const key of this.#dropped) delete annotations[key]
    return { ...record, annotations }
  }

  /**
   * Keeps the lease renewed while `task` runs, whatever `renew` says: an exclusive holder that waits
   * for shared holders to finish holds its lease meanwhile. Afterwards, when renewals are off and more
   * than a second has passed, renews once, so the caller gets the full `expires` from now.
   */
  async renewWhile(task: () => Promise<void>): Promise<void> {
    this.#forceRenew = true
    if (this.#renewTimer === undefined && this.#renewing === undefined)
      this.#scheduleRenewal(this.#lastSentAt)
    try {
      await task()
    } finally {
      this.#forceRenew = false
      if (!this.#ctx.renew && this.#renewTimer !== undefined) {
        clearTimeout(this.#renewTimer)
        this.#renewTimer = undefined
      }
    }
    await this.#renewing
    if (this.#ctx.clock.now() - this.#lastSentAt > 1000) await this.#renewOnce()
  }

  #lose(reason: LockLostError | DOMException): void {
    this.#clearTimers()
    if (!this.#controller.signal.aborted) {
      this.#ctx.logger[reason instanceof LockLostError ? 'warn' : 'debug']?.(reason.message, this.#fields())
      this.#controller.abort(reason)
    }
  }

  #scheduleDeadline(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer)
    const delay = this.#deadline - this.#ctx.clock.now()
    if (delay <= 0) {
      this.#lose(
        new LockLostError(
          this.name,
          'expired',
          `it was not renewed within \`expires\` (${this.#ctx.expiresMs / 1000} s) minus the safety margin`,
        ),
      )
      return
    }
    // Timers may fire early relative to the monotonic clock (or be clamped); re-check on every firing.
    this.#deadlineTimer = setClampedTimeout(() => {
      this.#deadlineTimer = undefined
      this.#scheduleDeadline()
    }, delay)
  }

  #scheduleRenewal(lastSentAt: number): void {
    if (this.#controller.signal.aborted || !(this.#ctx.renew || this.#forceRenew)) return
    // Two renewals fit in before the deadline, whatever the safety margin.
    const interval = Math.min(this.#ctx.expiresMs / 3, (this.#ctx.expiresMs - this.#ctx.safetyMarginMs) / 2)
    this.#setRenewTimer(lastSentAt + interval)
  }

  #setRenewTimer(at: number): void {
    if (this.#renewTimer !== undefined) clearTimeout(this.#renewTimer)
    this.#renewAt = at
    this.#renewTimer = setClampedTimeout(() => {
      this.#renewTimer = undefined
      if (this.#ctx.clock.now() < this.#renewAt - 1) {
        this.#setRenewTimer(this.#renewAt)
        return
      }
      const renewing = this.#renewOnce()
      this.#renewing = renewing
      void renewing.finally(() => {
        if (this.#renewing === renewing) this.#renewing = undefined
      })
    }, at - this.#ctx.clock.now())
  }

  async #renewOnce(): Promise<void> {
    if (this.#controller.signal.aborted) return
    const { store, clock } = this.#ctx
    const sentAt = clock.now()
    if (sentAt >= this.#deadline) {
      // The process was paused (or starved) past its deadline: the lock is already lost, whatever
      // the lease says, and a renewal now would keep it held for a holder that must stop.
      this.#scheduleDeadline()
      return
    }
    const time = formatMicroTime(clock.wallNow())
    const next = this.#withoutDropped(
      this.#ctx.renewal?.(this.#record, clock.wallNow()) ?? { ...this.#record, renewTime: time },
    )
    // No answer can help after the deadline: by then the signal has fired anyway.
    const budget = Math.max(1, Math.min(this.#ctx.requestTimeoutMs, this.#deadline - sentAt))
    const timer = requestDeadline(budget, store.server, 'did not answer a renewal')
    try {
      const record = await store.update(next, { signal: timer.start() })
      // Kept even after the signal fired, so that release() frees the lease with current preconditions.
      this.#record = record
      if (this.#controller.signal.aborted) return
      if (clock.now() >= this.#deadline) {
        // The answer came after the deadline (the process was starved before it could run the
        // deadline timer): the lock ended then, and a lock that ended never comes back.
        this.#scheduleDeadline()
        return
      }
      this.#lastSentAt = sentAt
      this.#deadline = sentAt + this.#ctx.expiresMs - this.#ctx.safetyMarginMs
      this.#scheduleDeadline()
      this.#scheduleRenewal(sentAt)
    } catch (error) {
      if (this.#controller.signal.aborted) return
      if (error instanceof LeaseConflictError) {
        this.#lose(
          new LockLostError(this.name, 'taken', 'the lease was changed by someone else', { cause: error }),
        )
      } else if (error instanceof LockUnavailableError && !error.outcomeUnknown) {
        // The renewal was not applied (it never reached the server, or the server throttled it without
        // executing it): the lease is unchanged, so retry while time is left, no sooner than a
        // throttling server asked. If no retry fits before the deadline, the deadline timer ends the lock.
        const delay = backoff(1, { baseMs: this.#ctx.retryIntervalMs, atLeastMs: error.retryAfterMs })
        const retryAt = clock.now() + delay
        if (error.status === 429) {
          this.#ctx.logger.warn?.(
            'the API server throttled a renewal (429); the lock holds until its deadline',
            {
              ...this.#fields(),
              retryInMs: retryAt < this.#deadline ? Math.round(delay) : undefined,
              deadlineInMs: Math.round(this.#deadline - clock.now()),
            },
          )
        }
        if (retryAt < this.#deadline) this.#setRenewTimer(retryAt)
      } else {
        const message =
          error instanceof LockError
            ? `a renewal failed and may not have applied (${error.message})`
            : 'a renewal failed and may not have applied'
        this.#lose(new LockLostError(this.name, 'renewal-failed', message, { cause: error }))
      }
    } finally {
      timer.clear()
    }
  }

  async #release(): Promise<void> {
    const { store, logger } = this.#ctx
    // The signal fires before the lease is marked free, so no one else can run while the holder does.
    this.#lose(new DOMException(`lock \`${this.name}\` was released`, 'AbortError'))
    // A renewal in flight is awaited (it is bounded by its own timeout), not aborted: if it applied,
    // its resourceVersion is the one the release must carry.
    await this.#renewing?.catch(() => {})
    try {
      await this.#free(this.#withoutDropped(this.#record))
    } catch (error) {
      if (!(error instanceof LeaseConflictError)) {
        logger.warn?.('could not mark the lease free; it expires on its own', { ...this.#fields(), error })
        return
      }
      // Our record is stale: a renewal whose answer was lost applied, or someone wrote the lease and
      // kept its holder (a label added).
      try {
        if (this.#ctx.discard) {
          await discardIfHeldBy(
            store,
            this.namespace,
            this.leaseName,
            this.holder,
            this.#ctx.requestTimeoutMs,
          )
          return
        }
        const freed = await freeIfHeldBy(
          store,
          this.namespace,
          this.leaseName,
          this.holder,
          this.#requestOptions(),
        )
        if (freed === undefined)
          logger.debug?.('lease changed before release; nothing to free', this.#fields())
        else this.#record = freed
      } catch (retryError) {
        logger.warn?.('could not mark the lease free; it expires on its own', {
          ...this.#fields(),
          error: retryError,
        })
      }
    } finally {
      this.#ctx.onReleased(this)
    }
  }

  async #free(record: LeaseRecord): Promise<void> {
    if (this.#ctx.discard) {
      await discardRecord(this.#ctx.store, record, this.#ctx.requestTimeoutMs)
      return
    }
    this.#record = await freeRecord(this.#ctx.store, record, this.#requestOptions())
  }

  #requestOptions(): FreeOptions {
    return { requestTimeoutMs: this.#ctx.requestTimeoutMs, wallNow: () => this.#ctx.clock.wallNow() }
  }

  #clearTimers(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer)
    if (this.#renewTimer !== undefined) clearTimeout(this.#renewTimer)
    this.#deadlineTimer = undefined
    this.#renewTimer = undefined
  }

  #fields(): Record<string, unknown> {
    return {
      lock: this.name,
      namespace: this.namespace,
      lease: this.leaseName,
      holder: this.holder,
      resourceVersion: this.#record.resourceVersion,
    }
  }
}

export interface FreeOptions {
  readonly requestTimeoutMs: number
  /** Epoch milliseconds for the informational `renewTime`. */
  readonly wallNow: () => number
}

/** Marks `record` free under its uid and resourceVersion; a `LeaseConflictError` if they no longer match. */
async function freeRecord(
  store: LeaseStore,
  record: LeaseRecord,
  options: FreeOptions,
): Promise<LeaseRecord> {
  const timer = requestDeadline(options.requestTimeoutMs, store.server)
  try {
    return await store.update(freedRecord(record, options.wallNow()), { signal: timer.start() })
  } finally {
    timer.clear()
  }
}

/**
 * Reads the lease and frees it if it still names `identity` (and kube-locks manages it): no one
 * else's write names an acquisition's identity, so such a lease is its to free, whatever its
 * resourceVersion now is. Resolves with the freed record, or `undefined` if there was nothing to free.
 */
export async function freeIfHeldBy(
  store: LeaseStore,
  namespace: string,
  leaseName: string,
  identity: string,
  options: FreeOptions,
): Promise<LeaseRecord | undefined> {
  const current = await readHeldBy(store, namespace, leaseName, identity, options.requestTimeoutMs)
  return current === undefined ? undefined : freeRecord(store, current, options)
}

/**
 * One bounded read of a lease; the lease if it still names `identity` and kube-locks manages it. No one
 * else's write names an acquisition's identity, so such a lease is its own, whatever its resourceVersion.
 */
async function readHeldBy(
  store: LeaseStore,
  namespace: string,
  name: string,
  identity: string,
  requestTimeoutMs: number,
): Promise<LeaseRecord | undefined> {
  const timer = requestDeadline(requestTimeoutMs, store.server)
  let current: LeaseRecord | undefined
  try {
    current = await store.get(namespace, name, { signal: timer.start() })
  } finally {
    timer.clear()
  }
  if (current === undefined || current.holderIdentity !== identity || !isManaged(current)) return undefined
  return current
}

/**
 * Deletes a holder record under its uid and resourceVersion; a `LeaseConflictError` if they no longer
 * match. One that is gone already counts as deleted.
 */
export async function discardRecord(store: LeaseStore, record: LeaseRecord, requestTimeoutMs: number) {
  const timer = requestDeadline(requestTimeoutMs, store.server)
  try {
    await store.delete(record.namespace, record.name, record, { signal: timer.start() })
  } catch (error) {
    if (!(error instanceof LeaseNotFoundError)) throw error
  } finally {
    timer.clear()
  }
}

/**
 * Reads a holder record and deletes it if it still names `identity`. Resolves `true` if it deleted
 * one; `false` if there was none of ours.
 */
export async function discardIfHeldBy(
  store: LeaseStore,
  namespace: string,
  name: string,
  identity: string,
  requestTimeoutMs: number,
): Promise<boolean> {
  const current = await readHeldBy(store, namespace, name, identity, requestTimeoutMs)
  if (current === undefined) return false
  await discardRecord(store, current, requestTimeoutMs)
  return true
}
