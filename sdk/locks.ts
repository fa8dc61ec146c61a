import { randomBytes } from 'node:crypto'
import type { AcquireState, StepContext, StepResult } from './acquire-step.ts'
import { acquireStep, forgetView, INITIAL_STATE } from './acquire-step.ts'
import { LOCK_NAME_ANNOTATION, NODE_ANNOTATION, POD_ANNOTATION, SERVICE_ANNOTATION } from './constants.ts'
import { InvalidLockOptionsError, LockClosedError, LockTimeoutError, LockUnavailableError } from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import { observe } from './expiry.ts'
import type { Lock } from './held-lock.ts'
import { freeIfHeldBy, HeldLock } from './held-lock.ts'
import { base32, leaseNameFor } from './lease-name.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import type { AcquireOptions, ResolvedAcquireOptions, ResolvedLocksOptions } from './options.ts'
import { resolveAcquireOptions } from './options.ts'
import { WaitLine } from './queue.ts'
import { checkServerVersion } from './server-version.ts'
import { requestTimer, setClampedTimeout } from './timers.ts'
import type { HubEvent, QueueNews } from './watch-hub.ts'
import { isNewer, jitter, WatchHub } from './watch-hub.ts'

/** The body of `withLock()`: runs while the lock is held; `signal` aborts if the lock is lost. */
export type LockedFunction<T> = (signal: AbortSignal, lock: Lock) => Promise<T> | T

/**
 * Named, cluster-wide locks. Create one per process with `createLocks()` and share it: its waiters
 * share one watch per namespace.
 *
 * Locks are not re-entrant: a second `acquire()` of a name this process already holds waits like any
 * other acquirer (each acquisition has its own holder identity).
 */
export interface Locks extends AsyncDisposable {
  /** The namespace of the leases. */
  readonly namespace: string
  /** Acquires a lock; the name defaults to the `service` given to `createLocks()`. */
  acquire(name?: string, options?: AcquireOptions): Promise<Lock>
  acquire(options: AcquireOptions): Promise<Lock>
  /** Runs `fn` while holding the lock, then releases it (also when `fn` throws). */
  withLock<T>(fn: LockedFunction<T>): Promise<T>
  withLock<T>(name: string, fn: LockedFunction<T>): Promise<T>
  withLock<T>(options: AcquireOptions, fn: LockedFunction<T>): Promise<T>
  withLock<T>(name: string, options: AcquireOptions, fn: LockedFunction<T>): Promise<T>
  /**
   * Releases every held lock, rejects waiting calls with `LockClosedError`, stops the watches and
   * closes the connections it opened. Idempotent.
   */
  close(): Promise<void>
}

const MAX_OBSERVATIONS = 1000

export class LockClient implements Locks {
  readonly namespace: string
  readonly #options: ResolvedLocksOptions
  readonly #store: LeaseStore
  readonly #ownsStore: boolean
  readonly #hub: WatchHub
  readonly #held = new Set<HeldLock>()
  readonly #pending = new Set<Promise<unknown>>()
  readonly #closeController = new AbortController()
  /**
   * When this process first saw each lease's current resourceVersion, shared by all acquire calls: a
   * caller whose `timeout` is shorter than a lease's duration must still be able to take over a lease
   * whose holder died, on a later call.
   */
  readonly #observations = new Map<string, LeaseObservation>()
  #closing: Promise<void> | undefined
  #versionChecked = false

  constructor(options: ResolvedLocksOptions, store: LeaseStore, ownsStore: boolean) {
    this.#options = options
    this.#store = store
    this.#ownsStore = ownsStore
    this.namespace = options.namespace
    this.#hub = new WatchHub(store, options.namespace, {
      logger: options.logger,
      retryIntervalMs: options.retryIntervalMs,
    })
  }

  acquire(nameOrOptions?: string | AcquireOptions, maybeOptions?: AcquireOptions): Promise<Lock> {
    let name: string | undefined
    let options: AcquireOptions | undefined
    if (typeof nameOrOptions === 'object' && nameOrOptions !== null) {
      options = nameOrOptions
    } else {
      name = nameOrOptions
      options = maybeOptions
    }
    this.#checkServerVersion()
    const task = (async () => this.#acquire(this.#lockName(name), resolveAcquireOptions(options)))()
    this.#track(task)
    return task
  }

  withLock<T>(...args: unknown[]): Promise<T> {
    const fn = args.at(-1)
    if (typeof fn !== 'function') {
      return Promise.reject(new InvalidLockOptionsError('fn', 'a function as the last argument', fn))
    }
    const rest = args.slice(0, -1)
    if (rest.length > 2) {
      return Promise.reject(
        new InvalidLockOptionsError('arguments', 'at most (name, options, fn)', rest.length + 1),
      )
    }
    let name: unknown
    let options: unknown
    if (rest.length === 2) [name, options] = rest
    else if (typeof rest[0] === 'object' && rest[0] !== null) options = rest[0]
    else name = rest[0]
    if (name !== undefined && typeof name !== 'string') {
      return Promise.reject(new InvalidLockOptionsError('name', 'a non-empty string', name))
    }
    return this.#withLock(name, options as AcquireOptions | undefined, fn as LockedFunction<T>)
  }

  async #withLock<T>(name: string | undefined, options: AcquireOptions | undefined, fn: LockedFunction<T>) {
    const lock = await this.acquire(name, options)
    try {
      return await fn(lock.signal, lock)
    } finally {
      await lock.release()
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #close(): Promise<void> {
    this.#closeController.abort(new LockClosedError())
    // Calls that end on the abort may start background work (leaving a line) as they go.
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
    await Promise.all([...this.#held].map((lock) => lock.release()))
    await this.#hub.close()
    if (this.#ownsStore) await this.#store.close?.()
  }

  /**
   * Once per client, beside the first acquire (not delaying it): warns if the server is older than
   * Kubernetes 1.35, where fencing tokens rest on etcd's behaviour rather than the API's promise.
   * Tracked with the pending calls, so close() ends and awaits it.
   */
  #checkServerVersion(): void {
    if (this.#versionChecked || this.#closeController.signal.aborted) return
    this.#versionChecked = true
    this.#track(
      this.#bounded(
        (signal) => checkServerVersion(this.#store, this.#options.logger, { signal }),
        this.#closeController.signal,
      ),
    )
  }

  #lockName(name: string | undefined): string {
    if (name !== undefined) return name
    if (this.#options.service !== undefined) return this.#options.service
    throw new InvalidLockOptionsError(
      'name',
      'a lock name, since createLocks() was given no `service` to default to',
      undefined,
    )
  }

  async #acquire(lockName: string, options: ResolvedAcquireOptions): Promise<Lock> {
    const { clock, requestTimeoutMs, retryIntervalMs } = this.#options
    if (this.#closeController.signal.aborted) throw new LockClosedError()
    options.signal?.throwIfAborted()
    const leaseName = leaseNameFor(lockName)
    const signals = [this.#closeController.signal, ...(options.signal ? [options.signal] : [])]
    const start = clock.now()
    const deadline = start + options.timeout * 1000
    // With `timeout: 0` the one attempt still gets a full request timeout; otherwise no read outlives
    // the deadline. Writes always get a full request timeout (see acquireStep's `writeSignal`).
    const requestsEnd = options.timeout === 0 ? start + requestTimeoutMs : deadline
    const readBudget = () => Math.min(requestTimeoutMs, requestsEnd - clock.now())
    const validForMs = (options.expires - options.safetyMargin) * 1000
    const identity = newIdentity(this.#options.identity)
    const annotations = this.#annotations(lockName)
    const line = options.fair ? this.#waitLine(lockName, leaseName, identity) : undefined
    // The line as known when the lock could be taken: read beside the first read of the lease (or
    // taken from the watch, when it runs), kept current by the watch after that.
    let lineRead: Promise<void> | undefined
    const readLine = (line: WaitLine) => {
      const known = this.#hub.queue(leaseName)
      if (known !== undefined) line.update(known)
      else lineRead = this.#readLine(line, readBudget(), signals)
    }
    let ctx: Omit<StepContext, 'signal' | 'writeSignal'> = {
      store: this.#store,
      namespace: this.namespace,
      leaseName,
      identity,
      leaseDurationSeconds: Math.ceil(options.expires),
      annotations,
      graceMs: this.#options.expiryGraceMs,
      now: () => clock.now(),
      wallNow: () => clock.wallNow(),
      validForMs,
      mayTake:
        line &&
        (async (view) => {
          await lineRead
          const holder = view === 'absent' ? undefined : view.record.holderIdentity
          const ahead = line.ahead(clock.now(), holder)
          if (ahead.count > 0) return false
          if (ahead.passed === 0 && line.seesOwnJoin) return true
          // Passing waiters as gone, or deciding on a view older than the own ticket (which may miss
          // a waiter that joined just before): only on a fresh read, which shows every ticket and any
          // renewal the watch has not delivered yet. A read that fails leaves the last view to
          // decide: order gives way to progress, and the taking write is a compare-and-swap either way.
          await this.#readLine(line, readBudget(), signals)
          return line.ahead(clock.now(), holder).count === 0
        }),
    }
    const wakeup = new Wakeup()
    let news: { lease: LeaseRecord | undefined; resourceVersion: string } | undefined
    let lineNews = false
    // Set when the watch was unhealthy at any time since the last poll: a hub that keeps failing flips
    // between states, and each flip must not postpone the poll.
    let pollWanted = false
    let nextPollAt: number | undefined
    const onHub = (event: HubEvent) => {
      if (event.type === 'health') pollWanted ||= !event.healthy
      else if (news === undefined || isNewer(event.resourceVersion, news.resourceVersion)) news = event
      wakeup.notify()
    }
    const onLine = (news: QueueNews) => {
      if (line === undefined) return
      if (news.kind === 'line') line.update(news)
      // A renewal or a later arrival: nobody ahead went away, so there is nothing to look at.
      else if (!line.apply(news)) return
      lineNews = true
      wakeup.notify()
    }
    const unsubscribe: (() => void)[] = []
    let state: AcquireState = { ...INITIAL_STATE, previous: this.#observations.get(leaseName) }
    let lastError: LockUnavailableError | undefined
    let failures = 0
    // Attempts in a row that wrote nothing useful (lost compare-and-swaps, locks learned too late).
    let fruitless = 0
    // When joining the line or renewing the ticket may be tried again after a failure.
    let lineRetryAt = Number.NEGATIVE_INFINITY
    const timeoutError = () => {
      const view = state.view
      const holder = typeof view === 'object' ? view.record.holderIdentity : undefined
      return new LockTimeoutError({ lockName, namespace: this.namespace, holder, timeout: options.timeout })
    }
    const tooShortError = (roundTripMs: number) =>
      new InvalidLockOptionsError(
        'expires',
        `longer than the safety margin (${options.safetyMargin} s) plus one API round trip ` +
          `(${Math.round(roundTripMs)} ms measured): a lock this short is lost before its holder hears ` +
          'it was acquired',
        options.expires,
      )
    const backOff = async (attempt: number, baseMs: number, atLeastMs = 0) => {
      const wakeAt = clock.now() + Math.max(jitter(baseMs * Math.min(2 ** (attempt - 1), 8)), atLeastMs)
      await wakeup.sleep(Math.min(wakeAt, deadline) - clock.now(), signals, false)
    }
    /** Joins the line, renews the ticket or joins again at the back, as the time has come for. */
    const tendLine = async (line: WaitLine) => {
      const now = clock.now()
      if (now < lineRetryAt) return
      const signal = AbortSignal.any(signals)
      try {
        if (line.mustRejoin(now)) await this.#bounded((s) => line.leave(s), signal)
        if (line.own === undefined) await this.#bounded((s) => line.join(s), signal)
        else if (now >= line.renewDueAt) await this.#bounded((s) => line.renew(s), signal)
        lineRetryAt = Number.NEGATIVE_INFINITY
      } catch (error) {
        if (!(error instanceof LockUnavailableError)) throw error
        lineRetryAt = clock.now() + Math.max(jitter(retryIntervalMs), error.retryAfterMs ?? 0)
        this.#options.logger.debug?.('could not join or renew a place in line; retrying', {
          lock: lockName,
          namespace: this.namespace,
          error,
        })
      }
    }

    try {
      if (line !== undefined) readLine(line)
      for (;;) {
        const budget = readBudget()
        if (budget <= 0) throw lastError ?? timeoutError()
        const result = await this.#step(ctx, state, budget, signals)
        if (result.kind === 'acquired') {
          // Whatever was pending is settled: this acquisition holds the lease now.
          state = INITIAL_STATE
          this.#observations.delete(leaseName)
          if (line !== undefined) this.#track(this.#bounded((s) => line.leave(s)))
          const lock = this.#hold(lockName, result.record, result.sentAt, options)
          if (options.signal?.aborted) {
            // The caller gave up while the write was in flight: hand the lease back.
            await lock.release()
            throw options.signal.reason
          }
          if (!lock.signal.aborted) return lock
          await lock.release()
          // Past its deadline on arrival. Straight from its own write: `expires` cannot outlast a
          // round trip, and trying again would only spin.
          if (!result.readBack) throw tooShortError(clock.now() - result.sentAt)
          // Learned late, from a read after a write whose answer was lost. A fresh identity: if the
          // hand-back failed, the old lease must look like anyone else's.
          if (options.timeout === 0) throw timeoutError()
          ctx = { ...ctx, identity: newIdentity(this.#options.identity) }
          await backOff(++fruitless, retryIntervalMs / 10)
          continue
        }
        state = result.state
        if (result.kind === 'too-slow') throw tooShortError(result.roundTripMs)
        if (result.kind === 'conflict') {
          // A lost compare-and-swap is the answer of a single attempt.
          if (options.timeout === 0) throw timeoutError()
          // Someone else wrote first: read again at once, but not in a tight loop.
          if (++fruitless > 1) await backOff(fruitless - 1, retryIntervalMs / 10)
          continue
        }
        if (result.kind === 'unavailable') {
          lastError = result.error
          failures++
          if (options.timeout === 0 || clock.now() >= deadline) throw result.error
          await backOff(failures, retryIntervalMs, result.error.retryAfterMs)
          continue
        }
        // Held by someone else, or free with others ahead in line.
        lastError = undefined
        failures = 0
        fruitless = 0
        if (result.kind === 'held') this.#remember(leaseName, result.observation)
        if (options.timeout === 0) throw timeoutError()
        if (unsubscribe.length === 0) {
          unsubscribe.push(this.#hub.subscribe(leaseName, onHub))
          if (line !== undefined) unsubscribe.push(this.#hub.subscribeQueue(leaseName, onLine))
          pollWanted ||= this.#hub.failing
        }
        const takeOverAt = result.kind === 'held' ? result.expiresAt : Number.POSITIVE_INFINITY
        const seenVersion = typeof state.view === 'object' ? state.view.record.resourceVersion : undefined
        const holder = typeof state.view === 'object' ? state.view.record.holderIdentity : undefined
        // When the first waiter ahead (if any) could stop counting: then this one may be first in line.
        const lineChangesAt = line?.ahead(clock.now(), holder).until ?? Number.POSITIVE_INFINITY
        for (;;) {
          if (line !== undefined) await tendLine(line)
          const now = clock.now()
          if (news !== undefined) {
            const event = news
            news = undefined
            if (isNewer(event.resourceVersion, seenVersion)) {
              const previous = typeof state.view === 'object' ? state.view : undefined
              state = {
                ...state,
                view: event.lease === undefined ? 'absent' : observe(previous, event.lease, now),
              }
              break
            }
          }
          if (lineNews) {
            lineNews = false
            break
          }
          if (now >= deadline) throw timeoutError()
          if (now >= takeOverAt) break
          if (now >= lineChangesAt) break
          if (pollWanted) nextPollAt ??= now + jitter(retryIntervalMs)
          const pollAt = nextPollAt ?? Number.POSITIVE_INFINITY
          const lineAt = line === undefined ? Number.POSITIVE_INFINITY : Math.max(lineRetryAt, line.dueAt)
          const notified = await wakeup.sleep(
            Math.min(deadline, takeOverAt, pollAt, lineChangesAt, lineAt) - now,
            signals,
            true,
          )
          if (!notified && clock.now() >= pollAt && clock.now() < deadline) {
            nextPollAt = undefined
            pollWanted = this.#hub.failing
            state = forgetView(state)
            if (line !== undefined) readLine(line)
            break
          }
        }
      }
    } catch (error) {
      // A write whose outcome is unknown may have made this acquisition the holder: give the lease
      // back rather than leave it held by nobody until it expires.
      if (state.pendingSentAt !== undefined) await this.#abandon(ctx.leaseName, ctx.identity)
      if (line !== undefined) this.#track(this.#bounded((s) => line.leave(s)))
      throw error
    } finally {
      for (const stop of unsubscribe) stop()
      wakeup.dispose()
    }
  }

  #waitLine(lockName: string, leaseName: string, identity: string): WaitLine {
    const { clock, expiryGraceMs, ticketDurationSeconds } = this.#options
    const { [LOCK_NAME_ANNOTATION]: _, ...holderAnnotations } = this.#annotations(lockName)
    return new WaitLine({
      store: this.#store,
      namespace: this.namespace,
      leaseName,
      lockName,
      identity,
      durationSeconds: ticketDurationSeconds,
      annotations: holderAnnotations,
      graceMs: expiryGraceMs,
      now: () => clock.now(),
      wallNow: () => clock.wallNow(),
    })
  }

  /** Reads the line within `budgetMs`. Never throws: without it, the lock is taken as if nobody waited. */
  async #readLine(line: WaitLine, budgetMs: number, signals: readonly AbortSignal[]): Promise<void> {
    try {
      await this.#bounded((signal) => line.read(signal), AbortSignal.any([...signals]), Math.max(0, budgetMs))
    } catch (error) {
      this.#options.logger.debug?.('could not read the line of a fair lock', { error })
    }
  }

  /** Runs one request under a request timeout of `ms` (by default a full one), and `signal` if given. */
  async #bounded<T>(
    request: (signal: AbortSignal) => Promise<T>,
    signal?: AbortSignal,
    ms = this.#options.requestTimeoutMs,
  ): Promise<T> {
    const timer = this.#requestTimer(ms)
    try {
      return await request(signal === undefined ? timer.start() : AbortSignal.any([timer.start(), signal]))
    } finally {
      timer.clear()
    }
  }

  /** Tracks a call or background work (leaving a line, the version check), so that close() waits for it. */
  #track(task: Promise<unknown>): void {
    const settled = task.catch(() => {})
    this.#pending.add(settled)
    void settled.finally(() => this.#pending.delete(settled))
  }

  /**
   * One acquire step: its read is bounded by `readBudgetMs` and aborted by `signals`; its write gets a
   * full request timeout of its own and is not aborted by the caller, since only its answer tells
   * whether it applied.
   */
  async #step(
    ctx: Omit<StepContext, 'signal' | 'writeSignal'>,
    state: AcquireState,
    readBudgetMs: number,
    signals: readonly AbortSignal[],
  ): Promise<StepResult> {
    const read = this.#requestTimer(readBudgetMs)
    const write = this.#requestTimer(this.#options.requestTimeoutMs)
    try {
      return await acquireStep(
        { ...ctx, signal: AbortSignal.any([read.start(), ...signals]), writeSignal: () => write.start() },
        state,
      )
    } finally {
      read.clear()
      write.clear()
    }
  }

  /** One bounded read, and the lease freed if it names `identity`. Never throws. */
  async #abandon(leaseName: string, identity: string): Promise<void> {
    const { requestTimeoutMs, clock, logger } = this.#options
    const fields = { lock: leaseName, namespace: this.namespace, holder: identity }
    try {
      const freed = await freeIfHeldBy(this.#store, this.namespace, leaseName, identity, {
        requestTimeoutMs,
        wallNow: () => clock.wallNow(),
      })
      if (freed) logger.debug?.('freed a lease acquired by a write whose answer was lost', fields)
    } catch (error) {
      logger.warn?.('could not check for a lease left by a write whose answer was lost', { ...fields, error })
    }
  }

  #remember(leaseName: string, observation: LeaseObservation): void {
    this.#observations.delete(leaseName)
    this.#observations.set(leaseName, observation)
    // Oldest first: forgetting an observation only makes a later takeover wait longer.
    if (this.#observations.size > MAX_OBSERVATIONS) {
      const oldest = this.#observations.keys().next().value
      if (oldest !== undefined) this.#observations.delete(oldest)
    }
  }

  #hold(lockName: string, record: LeaseRecord, sentAt: number, options: ResolvedAcquireOptions): HeldLock {
    const lock = new HeldLock({
      store: this.#store,
      clock: this.#options.clock,
      logger: this.#options.logger,
      lockName,
      record,
      sentAt,
      expiresMs: options.expires * 1000,
      safetyMarginMs: options.safetyMargin * 1000,
      renew: options.renew,
      requestTimeoutMs: this.#options.requestTimeoutMs,
      retryIntervalMs: this.#options.retryIntervalMs,
      onReleased: (released) => this.#held.delete(released),
    })
    this.#held.add(lock)
    this.#options.logger.debug?.('lock acquired', {
      lock: lockName,
      namespace: lock.namespace,
      holder: lock.holder,
      resourceVersion: lock.fencingToken,
    })
    if (this.#closeController.signal.aborted) {
      // close() raced with the acquiring write: hand the lease back rather than leak it.
      void lock.release()
      throw new LockClosedError()
    }
    return lock
  }

  /** A request timeout (see `requestTimer`) that fails the request as an outcome-unknown `LockUnavailableError`. */
  #requestTimer(ms: number): { start(): AbortSignal; clear(): void } {
    return requestTimer(
      ms,
      () =>
        new LockUnavailableError({
          server: this.#store.server,
          problem: `did not answer within ${Math.round(ms) / 1000} s`,
          outcomeUnknown: true,
        }),
    )
  }

  #annotations(lockName: string): Record<string, string> {
    const { service, pod, node } = this.#options
    return {
      [LOCK_NAME_ANNOTATION]: lockName,
      ...(service === undefined ? {} : { [SERVICE_ANNOTATION]: service }),
      ...(pod === undefined ? {} : { [POD_ANNOTATION]: pod }),
      ...(node === undefined ? {} : { [NODE_ANNOTATION]: node }),
    }
  }
}

/**
 * `<prefix>_<pid>_<random>`: unique per acquisition, readable in the HOLDER column. The 128 random bits
 * (26 base32 characters) carry the uniqueness: prefixes and pids repeat across pods (pid 1 in every
 * container, an explicit `identity`).
 */
export function newIdentity(prefix: string): string {
  return `${prefix}_${process.pid}_${base32(randomBytes(16))}`
}

/** A sleep that ends early on `notify()` (a notification while awake is kept for the next sleep). */
class Wakeup {
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
