import { randomBytes } from 'node:crypto'
import type { AcquireState, StepContext, StepResult } from './acquire-step.ts'
import { acquireStep } from './acquire-step.ts'
import { LOCK_NAME_ANNOTATION, NODE_ANNOTATION, POD_ANNOTATION, SERVICE_ANNOTATION } from './constants.ts'
import { InvalidLockOptionsError, LockClosedError, LockTimeoutError } from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import type { Lock } from './held-lock.ts'
import { freeIfHeldBy, HeldLock } from './held-lock.ts'
import { acquireHolder } from './holder-acquire.ts'
import type { HolderWaitContext } from './holder-wait.ts'
import { waitForHolders } from './holder-wait.ts'
import { MARK_ANNOTATIONS, mayHaveHolders } from './holders.ts'
import { base32, leaseNameFor } from './lease-name.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import type { AcquireArgs, WithLockArgs } from './lock-call.ts'
import { parseAcquireArgs, parseWithLockArgs } from './lock-call.ts'
import type { AcquireOptions, HolderMode, ResolvedAcquireOptions, ResolvedLocksOptions } from './options.ts'
import { resolveAcquireOptions } from './options.ts'
import { WaitLine } from './queue.ts'
import { checkServerVersion } from './server-version.ts'
import { renewedTicket } from './ticket.ts'
import { requestDeadline, Wakeup, withRequestDeadline } from './timers.ts'
import { LineKnowledge, LineTender, WaitInbox } from './wait-io.ts'
import type { WaitConfig, WaitEvent } from './wait-step.ts'
import { startWait, waitStep } from './wait-step.ts'
import { WatchHub } from './watch-hub.ts'

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

  acquire(...args: AcquireArgs): Promise<Lock> {
    const task = (async () => {
      const { name, options } = parseAcquireArgs(args)
      this.#checkServerVersion()
      return this.#acquire(this.#lockName(name), resolveAcquireOptions(options))
    })()
    this.#track(task)
    return task
  }

  withLock<T>(...args: WithLockArgs<LockedFunction<T>>): Promise<T> {
    try {
      const { name, options, fn } = parseWithLockArgs<LockedFunction<T>>(args)
      return this.#withLock(name, options, fn)
    } catch (error) {
      return Promise.reject(error)
    }
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
    const { clock, requestTimeoutMs } = this.#options
    if (this.#closeController.signal.aborted) throw new LockClosedError()
    options.signal?.throwIfAborted()
    const leaseName = leaseNameFor(lockName)
    const signals = [this.#closeController.signal, ...(options.signal ? [options.signal] : [])]
    const start = clock.now()
    const deadline = start + options.timeout * 1000
    if (options.mode !== undefined) {
      return this.#acquireHolder(lockName, leaseName, options, options.mode, { deadline, signals })
    }
    // With `timeout: 0` the one attempt still gets a full request timeout; otherwise no read outlives
    // the deadline. Writes always get a full request timeout (see acquireStep's `writeSignal`).
    const requestsEnd = options.timeout === 0 ? start + requestTimeoutMs : deadline
    const readBudget = () => Math.min(requestTimeoutMs, requestsEnd - clock.now())
    const identity = newIdentity(this.#options.identity)
    const line = options.fair ? this.#waitLine(lockName, leaseName, identity) : undefined
    const knowledge =
      line &&
      new LineKnowledge(line, {
        known: () => this.#hub.queue(leaseName),
        readFresh: () => this.#readLine(line, readBudget(), signals),
        now: () => clock.now(),
      })
    let ctx: Omit<StepContext, 'signal' | 'writeSignal'> = {
      store: this.#store,
      namespace: this.namespace,
      leaseName,
      identity,
      leaseDurationSeconds: Math.ceil(options.expires),
      annotations: this.#annotations(lockName),
      graceMs: this.#options.expiryGraceMs,
      now: () => clock.now(),
      wallNow: () => clock.wallNow(),
      validForMs: (options.expires - options.safetyMargin) * 1000,
      mayTake: knowledge?.mayTake,
    }
    const config = this.#waitConfig(lockName, options, deadline)
    const wakeup = new Wakeup()
    const inbox = new WaitInbox(wakeup, line, () => clock.now())
    const tender =
      line &&
      new LineTender(line, {
        lockName,
        namespace: this.namespace,
        server: this.#store.server,
        clock,
        logger: this.#options.logger,
        requestTimeoutMs,
        retryIntervalMs: this.#options.retryIntervalMs,
        signals,
      })
    const unsubscribe: (() => void)[] = []
    let { state, action } = startWait(this.#observations.get(leaseName))
    try {
      for (;;) {
        let event: WaitEvent
        switch (action.kind) {
          case 'fail':
            throw action.error
          case 'attempt': {
            if (action.readLine) knowledge?.refresh()
            const budget = readBudget()
            if (budget <= 0) {
              event = { type: 'out-of-time' }
              break
            }
            const result = await this.#step(ctx, state.acquire, budget, signals)
            if (result.kind === 'held') this.#remember(leaseName, result.observation)
            // When the first waiter ahead (if any) could stop counting: then this one may be first in line.
            let lineChangesAt = Number.POSITIVE_INFINITY
            if (line !== undefined && (result.kind === 'held' || result.kind === 'queued')) {
              const view = result.state.view
              const holder = typeof view === 'object' ? view.record.holderIdentity : undefined
              lineChangesAt = line.ahead(clock.now(), holder).until
            }
            event = { type: 'attempted', now: clock.now(), result, lineChangesAt }
            break
          }
          case 'hold': {
            this.#observations.delete(leaseName)
            if (line !== undefined) this.#track(this.#bounded((s) => line.leave(s)))
            const lock = this.#hold(lockName, action.record, action.sentAt, options)
            if (options.signal?.aborted) {
              // The caller gave up while the write was in flight: hand the lease back.
              await lock.release()
              throw options.signal.reason
            }
            if (!lock.signal.aborted && mayHaveHolders(action.record, action.readBack)) {
              await this.#waitForHolders(lock, config, { deadline, signals })
            }
            if (!lock.signal.aborted) return lock
            await lock.release()
            // A fresh identity: if the hand-back failed, the old lease must look like anyone else's.
            ctx = { ...ctx, identity: newIdentity(this.#options.identity) }
            event = {
              type: 'arrived-late',
              now: clock.now(),
              sentAt: action.sentAt,
              readBack: action.readBack,
            }
            break
          }
          case 'look': {
            if (unsubscribe.length === 0) {
              unsubscribe.push(this.#hub.subscribe(leaseName, inbox.onHub))
              if (line !== undefined) unsubscribe.push(this.#hub.subscribeQueue(leaseName, inbox.onLine))
              inbox.unhealthy ||= this.#hub.failing
            }
            const lineAt = tender === undefined ? Number.POSITIVE_INFINITY : await tender.tend()
            event = { type: 'looked', now: clock.now(), ...inbox.take(), lineAt }
            break
          }
          case 'sleep': {
            const notified = await wakeup.sleep(action.until - clock.now(), signals, action.wake)
            event = { type: 'slept', now: clock.now(), notified, hubFailing: this.#hub.failing }
            break
          }
        }
        ;({ state, action } = waitStep(config, state, event))
      }
    } catch (error) {
      // A write whose outcome is unknown may have made this acquisition the holder: give the lease
      // back rather than leave it held by nobody until it expires.
      if (state.acquire.pendingSentAt !== undefined) await this.#abandon(ctx.leaseName, ctx.identity)
      if (line !== undefined) this.#track(this.#bounded((s) => line.leave(s)))
      throw error
    } finally {
      for (const stop of unsubscribe) stop()
      wakeup.dispose()
    }
  }

  /** A shared or semaphore hold: the holder's own record, acquired by `acquireHolder`. */
  async #acquireHolder(
    lockName: string,
    leaseName: string,
    options: ResolvedAcquireOptions,
    mode: HolderMode,
    call: { readonly deadline: number; readonly signals: readonly AbortSignal[] },
  ): Promise<Lock> {
    const { [LOCK_NAME_ANNOTATION]: _, ...holderAnnotations } = this.#annotations(lockName)
    const config = this.#waitConfig(lockName, options, call.deadline)
    const own = await acquireHolder({
      ...this.#holderWait(leaseName, lockName, options, call),
      timedOut: config.timedOut,
      mode,
      identity: newIdentity(this.#options.identity),
      durationSeconds: Math.ceil(options.expires),
      validForMs: (options.expires - options.safetyMargin) * 1000,
      annotations: holderAnnotations,
      fair: options.fair,
    })
    const lock = this.#hold(lockName, own.record, own.sentAt, options, own.fencingToken)
    if (options.signal?.aborted) {
      await lock.release()
      throw options.signal.reason
    }
    return lock
  }

  /**
   * An exclusive acquirer's wait for shared or semaphore holders to finish, keeping its lease renewed
   * meanwhile. On failure (timeout, cancel) the lease is handed back.
   */
  async #waitForHolders(
    lock: HeldLock,
    config: WaitConfig,
    call: { readonly deadline: number; readonly signals: readonly AbortSignal[] },
  ): Promise<void> {
    try {
      await lock.renewWhile(async () => {
        await waitForHolders({
          ...this.#holderWait(lock.leaseName, lock.name, undefined, {
            ...call,
            signals: [...call.signals, lock.signal],
          }),
          timedOut: config.timedOut,
        })
        // Nobody is in, and nobody gets in while this holder holds: the mark has done its work.
        lock.dropAnnotations(MARK_ANNOTATIONS)
      })
    } catch (error) {
      await lock.release()
      throw error
    }
  }

  #holderWait(
    leaseName: string,
    lockName: string,
    options: ResolvedAcquireOptions | undefined,
    call: { readonly deadline: number; readonly signals: readonly AbortSignal[] },
  ): Omit<HolderWaitContext, 'timedOut'> {
    const { clock, logger, expiryGraceMs, requestTimeoutMs, retryIntervalMs } = this.#options
    return {
      store: this.#store,
      hub: this.#hub,
      namespace: this.namespace,
      leaseName,
      lockName,
      clock,
      logger,
      graceMs: expiryGraceMs,
      requestTimeoutMs,
      retryIntervalMs,
      deadline: call.deadline,
      once: options?.timeout === 0 || call.deadline <= clock.now(),
      signals: call.signals,
    }
  }

  /** The decisions of the wait loop for one call: its deadline and the errors it ends with. */
  #waitConfig(lockName: string, options: ResolvedAcquireOptions, deadline: number): WaitConfig {
    return {
      deadline,
      once: options.timeout === 0,
      retryIntervalMs: this.#options.retryIntervalMs,
      timedOut: (holder) =>
        new LockTimeoutError({ lockName, namespace: this.namespace, holder, timeout: options.timeout }),
      tooShort: (roundTripMs) =>
        new InvalidLockOptionsError(
          'expires',
          `longer than the safety margin (${options.safetyMargin} s) plus one API round trip ` +
            `(${Math.round(roundTripMs)} ms measured): a lock this short is lost before its holder hears ` +
            'it was acquired',
          options.expires,
        ),
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

  /** Runs one request under a request deadline of `ms` (by default a full one), and `signal` if given. */
  #bounded<T>(
    request: (signal: AbortSignal) => Promise<T>,
    signal?: AbortSignal,
    ms = this.#options.requestTimeoutMs,
  ): Promise<T> {
    return withRequestDeadline(request, { ms, server: this.#store.server, signal })
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
    const read = requestDeadline(readBudgetMs, this.#store.server)
    const write = requestDeadline(this.#options.requestTimeoutMs, this.#store.server)
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

  #hold(
    lockName: string,
    record: LeaseRecord,
    sentAt: number,
    options: ResolvedAcquireOptions,
    /** Set for a shared or semaphore holder, whose lease is its own record. */
    recordToken?: string,
  ): HeldLock {
    const lock = new HeldLock({
      ...(recordToken === undefined
        ? {}
        : { discard: true, renewal: renewedTicket, fencingToken: recordToken }),
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
