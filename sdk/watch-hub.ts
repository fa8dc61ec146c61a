import type { Logger } from './clock.ts'
import { MANAGED_BY_SELECTOR } from './constants.ts'
import { LockUnavailableError, WatchExpiredError } from './errors.ts'
import { holderRecordLock } from './holders.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseEvent, LeaseStore } from './lease-store.ts'
import { compareResourceVersions } from './resource-version.ts'
import { ticketLock } from './ticket.ts'
import { backoff, setClampedTimeout } from './timers.ts'

/**
 * One watch per namespace serves every waiter of a `Locks` instance: waiters subscribe by lease name
 * and are told about changes to that lease. The hub runs while it has subscribers.
 *
 * A late subscriber misses nothing: a waiter reads a lease, finds it held, and only then subscribes, so
 * a release delivered in between would be lost. While it runs, the hub keeps the newest version it has
 * seen of every lease (and, for a bounded number of deleted leases, the resourceVersion of the
 * deletion) and replays it to each new subscriber on a microtask. A subscriber compares resourceVersions
 * (`isNewer`), so a replay of what it already knows is harmless. Before the first list of a run there
 * is nothing to replay: that list announces every subscribed lease.
 *
 * Resilience: a stream the server ends is resumed from the last resourceVersion (nothing is missed, so
 * the hub stays healthy); 410 Gone leads to a fresh list, whose items are announced to subscribers as
 * changes; any other failure marks the hub unhealthy — waiters then poll — and it retries with
 * jittered backoff. Two more ways a watch goes wrong without failing:
 * - It stalls: the stream stays open and delivers nothing (a half-open TCP connection). A store whose
 *   server ends every watch after `store.watchTimeoutSeconds` (the Kubernetes store asks for 30 s) lets
 *   the hub bound this: a watch silent for `watchTimeoutSeconds + STALL_MARGIN_SECONDS` (35 s) since it
 *   opened or since its last event is aborted, the hub counts as unhealthy (waiters poll) and watches
 *   again. Silence is never taken for a stall from a store that sets no `watchTimeoutSeconds`.
 * - It flaps: the server answers and ends the stream at once, over and over. One such end is resumed at
 *   once (a server restart looks like this); from the second in a row the hub backs off (jittered,
 *   doubling from `retryIntervalMs`, at most 8×) and counts as unhealthy. A watch that delivered an event
 *   or stayed open for `SHORT_WATCH_MS` ends the streak.
 * After a stall or a streak of short watches the hub stays unhealthy until a watch proves itself: it
 * delivers an event, or the server ends it normally after it lived long.
 */

/** How much longer than the server's watch timeout a watch may stay silent before it counts as stalled. */
export const STALL_MARGIN_SECONDS = 5

/** A watch that ends sooner than this without an event counts as ended at once. */
export const SHORT_WATCH_MS = 1000

/** Deleted leases whose deletion the hub remembers for late subscribers; the oldest are forgotten first. */
export const MAX_TOMBSTONES = 1000

export type HubEvent =
  | {
      readonly type: 'lease'
      /** The lease as now stored, or `undefined` if it was deleted or is absent from a fresh list. */
      readonly lease: LeaseRecord | undefined
      /** The resourceVersion of the change (of the deletion, for a deleted lease); empty if unknown. */
      readonly resourceVersion: string
    }
  | { readonly type: 'health'; readonly healthy: boolean }

export type HubListener = (event: HubEvent) => void

/** The tickets of one lock (its line; see `sdk/ticket.ts`) as the hub knows them at `resourceVersion`. */
export interface QueueSnapshot {
  readonly tickets: readonly LeaseRecord[]
  readonly resourceVersion: string
}

/**
 * What a queue subscriber is told: the whole `line` (on subscribing and after every list), or one
 * `ticket` that the watch saw change (`deleted`: it is gone) at `resourceVersion`.
 */
export type QueueNews =
  | ({ readonly kind: 'line' } & QueueSnapshot)
  | {
      readonly kind: 'ticket'
      readonly ticket: LeaseRecord
      readonly deleted: boolean
      readonly resourceVersion: string
    }

export type QueueListener = (news: QueueNews) => void

export interface WatchHubOptions {
  readonly logger: Logger
  readonly retryIntervalMs: number
  readonly random?: () => number
  /** Monotonic milliseconds, to tell a watch that ended at once from one that lived. */
  readonly now?: () => number
  /** @default {@link MAX_TOMBSTONES} */
  readonly maxTombstones?: number
}

type LeaseNews = Extract<HubEvent, { type: 'lease' }>

export class WatchHub {
  readonly #store: LeaseStore
  readonly #namespace: string
  readonly #options: WatchHubOptions
  readonly #listeners = new Map<string, Set<HubListener>>()
  /** Lock lease name → listeners of its tickets. */
  readonly #queueListeners = new Map<string, Set<QueueListener>>()
  /** The newest version seen of each lease that exists, while the hub runs and has listed. */
  readonly #leases = new Map<string, LeaseRecord>()
  /** Deleted leases → resourceVersion of the deletion (or of the list that no longer had them), oldest first. */
  readonly #tombstones = new Map<string, string>()
  /** Lock lease name → its tickets by name: an index of `#leases`. */
  readonly #queues = new Map<string, Map<string, LeaseRecord>>()
  /** Lock lease name → listeners of its holder records (shared and semaphore holders). */
  readonly #holderListeners = new Map<string, Set<() => void>>()
  /** Lock lease name → its holder records by name: an index of `#leases`. */
  readonly #holders = new Map<string, Map<string, LeaseRecord>>()
  /** The resourceVersion up to which `#leases` is complete (the list's, then each event's). */
  #resourceVersion = ''
  #listed = false
  #healthy = false
  #failed = false
  #run: { controller: AbortController; task: Promise<void> } | undefined
  readonly #tasks = new Set<Promise<void>>()
  #sleepTimer: ReturnType<typeof setTimeout> | undefined
  #wakeSleep: (() => void) | undefined

  constructor(store: LeaseStore, namespace: string, options: WatchHubOptions) {
    this.#store = store
    this.#namespace = namespace
    this.#options = options
  }

  /** True while a watch is (being) established from an up-to-date resourceVersion. */
  get healthy(): boolean {
    return this.#healthy
  }

  /**
   * True after a list or watch failed, stalled or kept ending at once, until the hub is healthy again.
   * Not while it first connects: the first list announces the leases' state, so nothing is missed then.
   */
  get failing(): boolean {
    return this.#run !== undefined && !this.#healthy && this.#failed
  }

  get subscriberCount(): number {
    let count = 0
    for (const set of this.#listeners.values()) count += set.size
    for (const set of this.#queueListeners.values()) count += set.size
    for (const set of this.#holderListeners.values()) count += set.size
    return count
  }

  /**
   * The tickets of `leaseName` as the running, healthy hub knows them; `undefined` when the hub has not
   * listed yet or is unhealthy (its knowledge may then be behind: read the tickets instead).
   */
  queue(leaseName: string): QueueSnapshot | undefined {
    if (this.#run === undefined || !this.#listed || !this.#healthy) return undefined
    return this.#snapshot(leaseName)
  }

  /**
   * Subscribes to the tickets of one lock: `listener` gets every change to one of them, and the whole
   * line after every fresh list. Starts the hub if idle; a running hub that has listed tells the listener
   * what it knows on a microtask.
   */
  subscribeQueue(leaseName: string, listener: QueueListener): () => void {
    let set = this.#queueListeners.get(leaseName)
    if (set === undefined) {
      set = new Set()
      this.#queueListeners.set(leaseName, set)
    }
    set.add(listener)
    if (this.#run === undefined) this.#start()
    let subscribed = true
    const run = this.#run
    if (this.#listed) {
      queueMicrotask(() => {
        if (!subscribed || this.#run !== run || !this.#listed) return
        listener({ kind: 'line', ...this.#snapshot(leaseName) })
      })
    }
    return () => {
      if (!subscribed) return
      subscribed = false
      set.delete(listener)
      if (set.size === 0) this.#queueListeners.delete(leaseName)
      this.#stopIfIdle()
    }
  }

  /**
   * The newest version of `leaseName` the running, healthy hub has seen: `'absent'` if it has none,
   * `undefined` when it has not listed yet or is unhealthy.
   */
  lease(leaseName: string): LeaseRecord | 'absent' | undefined {
    if (this.#run === undefined || !this.#listed || !this.#healthy) return undefined
    return this.#leases.get(leaseName) ?? 'absent'
  }

  /**
   * The holder records of `leaseName` (see `sdk/holders.ts`) as the running, healthy hub knows them;
   * `undefined` when it has not listed yet or is unhealthy.
   */
  holders(leaseName: string): readonly LeaseRecord[] | undefined {
    if (this.#run === undefined || !this.#listed || !this.#healthy) return undefined
    return [...(this.#holders.get(leaseName)?.values() ?? [])]
  }

  /**
   * Subscribes to the holder records of one lock: `listener` is called after every change to one of
   * them, after every fresh list and when the hub's health changes (then `holders()` says what is known).
   * Starts the hub if idle.
   */
  subscribeHolders(leaseName: string, listener: () => void): () => void {
    let set = this.#holderListeners.get(leaseName)
    if (set === undefined) {
      set = new Set()
      this.#holderListeners.set(leaseName, set)
    }
    set.add(listener)
    if (this.#run === undefined) this.#start()
    let subscribed = true
    return () => {
      if (!subscribed) return
      subscribed = false
      set.delete(listener)
      if (set.size === 0) this.#holderListeners.delete(leaseName)
      this.#stopIfIdle()
    }
  }

  /** Leases and deletions remembered for late subscribers (bounded: see {@link MAX_TOMBSTONES}). */
  get knownLeaseCount(): number {
    return this.#leases.size + this.#tombstones.size
  }

  /**
   * Subscribes to changes of one lease; returns the unsubscribe function. Starts the hub if idle. If
   * the running hub has seen the lease, the listener is told its newest version on a microtask.
   */
  subscribe(leaseName: string, listener: HubListener): () => void {
    let set = this.#listeners.get(leaseName)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(leaseName, set)
    }
    set.add(listener)
    if (this.#run === undefined) this.#start()
    let subscribed = true
    const run = this.#run
    if (this.#listed) {
      queueMicrotask(() => {
        // Read at delivery, so a change emitted meanwhile is not followed by an older replay.
        if (!subscribed || this.#run !== run || !this.#listed) return
        const known = this.#known(leaseName)
        if (known !== undefined) listener(known)
      })
    }
    return () => {
      if (!subscribed) return
      subscribed = false
      set.delete(listener)
      if (set.size === 0) this.#listeners.delete(leaseName)
      this.#stopIfIdle()
    }
  }

  #stopIfIdle(): void {
    if (this.#listeners.size === 0 && this.#queueListeners.size === 0 && this.#holderListeners.size === 0) {
      void this.stop()
    }
  }

  /** Stops the watch and waits until every task the hub started has ended. */
  async close(): Promise<void> {
    await this.stop()
    await Promise.all([...this.#tasks])
  }

  /** Stops the watch and waits until its task has ended. */
  async stop(): Promise<void> {
    const run = this.#run
    if (run === undefined) return
    this.#run = undefined
    this.#forget()
    run.controller.abort()
    this.#cancelSleep()
    await run.task
    // A subscriber may have started a new run meanwhile; its health is its own.
    if (this.#run === undefined) this.#setHealthy(false)
  }

  #start(): void {
    this.#failed = false
    this.#forget()
    const controller = new AbortController()
    const run = { controller, task: Promise.resolve() }
    const task = this.#loop(controller.signal).catch((error: unknown) => {
      this.#options.logger.error?.('lease watch stopped unexpectedly', { namespace: this.#namespace, error })
    })
    run.task = task
    this.#tasks.add(task)
    void task.finally(() => this.#tasks.delete(task))
    this.#run = run
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const now = this.#options.now ?? (() => performance.now())
    let resourceVersion: string | undefined
    /** Failed, stalled or short watches in a row: they set the backoff. */
    let failures = 0
    /** Watches in a row that the server ended at once without an event. */
    let shortWatches = 0
    /** Set by a stall or a streak of short watches: not healthy until a watch proves itself. */
    let suspect = false
    const retryAfter = (attempt: number) =>
      backoff(attempt, { baseMs: this.#options.retryIntervalMs, random: this.#options.random })
    while (!signal.aborted) {
      let watch: WatchAttempt | undefined
      try {
        if (resourceVersion === undefined) {
          const list = await this.#store.list(this.#namespace, { labelSelector: MANAGED_BY_SELECTOR, signal })
          resourceVersion = list.resourceVersion
          this.#resourceVersion = resourceVersion
          this.#remember(list.items, list.resourceVersion)
          this.#announceList(list.items, list.resourceVersion)
          for (const lock of [...this.#queueListeners.keys()]) this.#emitQueue(lock)
          for (const lock of [...this.#holderListeners.keys()]) this.#emitHolders(lock)
        }
        if (!suspect) this.#setHealthy(true)
        watch = new WatchAttempt(signal, now(), this.#stallMs())
        const attempt = watch
        const onEvent = (event: LeaseEvent) => {
          if (signal.aborted || attempt.stalled) return
          attempt.delivered()
          failures = 0
          shortWatches = 0
          if (suspect) {
            suspect = false
            this.#setHealthy(true)
          }
          if (event.type === 'BOOKMARK') {
            resourceVersion = event.resourceVersion
            this.#resourceVersion = resourceVersion
            return
          }
          resourceVersion = event.lease.resourceVersion
          this.#resourceVersion = resourceVersion
          this.#apply(event)
          const lock = ticketLock(event.lease)
          if (lock !== undefined) {
            const deleted = event.type === 'DELETED'
            this.#emitQueue(lock, { kind: 'ticket', ticket: event.lease, deleted, resourceVersion })
            return
          }
          const held = holderRecordLock(event.lease)
          if (held !== undefined) {
            this.#emitHolders(held)
            return
          }
          this.#emit(event.lease.name, {
            type: 'lease',
            lease: event.type === 'DELETED' ? undefined : event.lease,
            resourceVersion: event.lease.resourceVersion,
          })
        }
        await this.#store.watch(
          this.#namespace,
          { resourceVersion, labelSelector: MANAGED_BY_SELECTOR, signal: attempt.signal },
          onEvent,
        )
        attempt.dispose()
        if (signal.aborted) break
        if (attempt.stalled) {
          // Nothing was missed that a watch from the same resourceVersion will not deliver.
          this.#options.logger.debug?.('lease watch stalled; watching again', {
            namespace: this.#namespace,
            silentSeconds: this.#stallMs() / 1000,
          })
          suspect = true
          this.#setHealthy(false)
          failures++
          await this.#sleep(retryAfter(failures))
          continue
        }
        if (attempt.hadEvents || now() - attempt.openedAt >= SHORT_WATCH_MS) {
          shortWatches = 0
          if (suspect) {
            suspect = false
            this.#setHealthy(true)
          }
          continue
        }
        shortWatches++
        // One stream ended at once is resumed at once; a server that keeps doing it is backed off.
        if (shortWatches >= 2) {
          suspect = true
          this.#setHealthy(false)
          this.#options.logger.debug?.('lease watch keeps ending at once; backing off', {
            namespace: this.#namespace,
            shortWatches,
          })
          await this.#sleep(retryAfter(shortWatches - 1))
        }
      } catch (error) {
        watch?.dispose()
        if (signal.aborted) break
        this.#setHealthy(false)
        if (error instanceof WatchExpiredError) {
          resourceVersion = undefined
          continue
        }
        failures++
        this.#options.logger.debug?.('lease watch failed; retrying', { namespace: this.#namespace, error })
        // A server that throttles says when to come back (429 with Retry-After): no sooner than that.
        const retryAfterMs = error instanceof LockUnavailableError ? (error.retryAfterMs ?? 0) : 0
        await this.#sleep(Math.max(retryAfter(failures), retryAfterMs))
      }
    }
  }

  /** Milliseconds of silence after which a watch counts as stalled; infinite if the store sets no bound. */
  #stallMs(): number {
    const timeout = this.#store.watchTimeoutSeconds
    if (timeout === undefined || !(timeout > 0)) return Number.POSITIVE_INFINITY
    return (timeout + STALL_MARGIN_SECONDS) * 1000
  }

  /** What a new subscriber of `leaseName` is told: its newest version seen, or its deletion. */
  #known(leaseName: string): LeaseNews | undefined {
    const lease = this.#leases.get(leaseName)
    if (lease !== undefined) return { type: 'lease', lease, resourceVersion: lease.resourceVersion }
    const deletedAt = this.#tombstones.get(leaseName)
    if (deletedAt !== undefined) return { type: 'lease', lease: undefined, resourceVersion: deletedAt }
    return undefined
  }

  #apply(event: Exclude<LeaseEvent, { type: 'BOOKMARK' }>): void {
    const { name, resourceVersion } = event.lease
    if (event.type === 'DELETED') {
      this.#leases.delete(name)
      this.#unindex(event.lease)
      this.#bury(name, resourceVersion)
    } else {
      this.#tombstones.delete(name)
      this.#leases.set(name, event.lease)
      this.#index(event.lease)
    }
  }

  /** The index a ticket or a holder record belongs in, and the lock it is filed under. */
  #indexOf(record: LeaseRecord): { index: Map<string, Map<string, LeaseRecord>>; lock: string } | undefined {
    const waitsFor = ticketLock(record)
    if (waitsFor !== undefined) return { index: this.#queues, lock: waitsFor }
    const holds = holderRecordLock(record)
    if (holds !== undefined) return { index: this.#holders, lock: holds }
    return undefined
  }

  #index(record: LeaseRecord): void {
    const where = this.#indexOf(record)
    if (where === undefined) return
    let records = where.index.get(where.lock)
    if (records === undefined) {
      records = new Map()
      where.index.set(where.lock, records)
    }
    records.set(record.name, record)
  }

  #unindex(record: LeaseRecord): void {
    const where = this.#indexOf(record)
    if (where === undefined) return
    const records = where.index.get(where.lock)
    records?.delete(record.name)
    if (records?.size === 0) where.index.delete(where.lock)
  }

  #emitHolders(leaseName: string): void {
    const set = this.#holderListeners.get(leaseName)
    if (set === undefined) return
    for (const listener of [...set]) listener()
  }

  #snapshot(leaseName: string): QueueSnapshot {
    const tickets = [...(this.#queues.get(leaseName)?.values() ?? [])]
    return { tickets, resourceVersion: this.#resourceVersion }
  }

  /** Tells one lock's queue subscribers `news`, by default the whole line. */
  #emitQueue(leaseName: string, news?: QueueNews): void {
    const set = this.#queueListeners.get(leaseName)
    if (set === undefined) return
    const told = news ?? { kind: 'line', ...this.#snapshot(leaseName) }
    for (const listener of [...set]) listener(told)
  }

  /** A fresh list replaces what was known; a lease it no longer has was deleted by the list's version. */
  #remember(items: readonly LeaseRecord[], listVersion: string): void {
    const listed = new Set(items.map((item) => item.name))
    for (const name of [...this.#leases.keys()]) {
      if (!listed.has(name)) {
        this.#leases.delete(name)
        this.#bury(name, listVersion)
      }
    }
    this.#queues.clear()
    this.#holders.clear()
    for (const item of items) {
      this.#tombstones.delete(item.name)
      this.#leases.set(item.name, item)
      this.#index(item)
    }
    this.#listed = true
  }

  #bury(name: string, resourceVersion: string): void {
    this.#tombstones.delete(name)
    this.#tombstones.set(name, resourceVersion)
    const max = this.#options.maxTombstones ?? MAX_TOMBSTONES
    while (this.#tombstones.size > max) {
      const oldest = this.#tombstones.keys().next().value
      if (oldest === undefined) break
      this.#tombstones.delete(oldest)
    }
  }

  #forget(): void {
    this.#leases.clear()
    this.#tombstones.clear()
    this.#queues.clear()
    this.#holders.clear()
    this.#resourceVersion = ''
    this.#listed = false
  }

  #announceList(items: readonly LeaseRecord[], listVersion: string): void {
    const byName = new Map(items.map((item) => [item.name, item]))
    for (const leaseName of [...this.#listeners.keys()]) {
      const lease = byName.get(leaseName)
      this.#emit(leaseName, { type: 'lease', lease, resourceVersion: lease?.resourceVersion ?? listVersion })
    }
  }

  #setHealthy(healthy: boolean): void {
    this.#failed = !healthy
    if (this.#healthy === healthy) return
    this.#healthy = healthy
    for (const set of [...this.#listeners.values()]) {
      for (const listener of [...set]) listener({ type: 'health', healthy })
    }
    for (const lock of [...this.#holderListeners.keys()]) this.#emitHolders(lock)
  }

  #emit(leaseName: string, event: HubEvent): void {
    const set = this.#listeners.get(leaseName)
    if (set === undefined) return
    for (const listener of [...set]) listener(event)
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeSleep = resolve
      this.#sleepTimer = setClampedTimeout(() => {
        this.#sleepTimer = undefined
        this.#wakeSleep = undefined
        resolve()
      }, ms)
    })
  }

  #cancelSleep(): void {
    if (this.#sleepTimer !== undefined) clearTimeout(this.#sleepTimer)
    this.#sleepTimer = undefined
    const wake = this.#wakeSleep
    this.#wakeSleep = undefined
    wake?.()
  }
}

/** One watch request: its own abort signal, and the stall timer that aborts it after a silence. */
class WatchAttempt {
  readonly openedAt: number
  readonly signal: AbortSignal
  hadEvents = false
  stalled = false
  readonly #controller = new AbortController()
  readonly #stallMs: number
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(runSignal: AbortSignal, openedAt: number, stallMs: number) {
    this.openedAt = openedAt
    this.signal = AbortSignal.any([runSignal, this.#controller.signal])
    this.#stallMs = stallMs
    this.#arm()
  }

  delivered(): void {
    this.hadEvents = true
    this.#arm()
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(): void {
    this.dispose()
    if (!Number.isFinite(this.#stallMs)) return
    this.#timer = setClampedTimeout(() => {
      this.#timer = undefined
      this.stalled = true
      this.#controller.abort()
    }, this.#stallMs)
  }
}

/** True if a hub event tells something newer than the resourceVersion the waiter acted on. */
export function isNewer(eventVersion: string, seenVersion: string | undefined): boolean {
  if (seenVersion === undefined || eventVersion === '') return true
  return compareResourceVersions(eventVersion, seenVersion) > 0
}
