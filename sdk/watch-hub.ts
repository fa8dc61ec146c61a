import type { Logger } from './clock.ts'
import { MANAGED_BY_SELECTOR } from './constants.ts'
import { WatchExpiredError } from './errors.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseEvent, LeaseStore } from './lease-store.ts'
import { compareResourceVersions } from './resource-version.ts'

/**
 * One watch per namespace serves every waiter of a `Locks` instance: waiters subscribe by lease name
 * and are told about changes to that lease. The hub runs while it has subscribers.
 *
 * Resilience: a stream the server ends is resumed from the last resourceVersion (nothing is missed, so
 * the hub stays healthy); 410 Gone leads to a fresh list, whose items are announced to subscribers as
 * changes; any other failure marks the hub unhealthy — waiters then poll — and it retries with
 * jittered backoff.
 */

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

export interface WatchHubOptions {
  readonly logger: Logger
  readonly retryIntervalMs: number
  readonly random?: () => number
}

export class WatchHub {
  readonly #store: LeaseStore
  readonly #namespace: string
  readonly #options: WatchHubOptions
  readonly #listeners = new Map<string, Set<HubListener>>()
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
   * True after a list or watch failed, until the hub is healthy again. Not while it first connects:
   * the first list announces the leases' state, so nothing is missed then.
   */
  get failing(): boolean {
    return this.#run !== undefined && !this.#healthy && this.#failed
  }

  get subscriberCount(): number {
    let count = 0
    for (const set of this.#listeners.values()) count += set.size
    return count
  }

  /** Subscribes to changes of one lease; returns the unsubscribe function. Starts the hub if idle. */
  subscribe(leaseName: string, listener: HubListener): () => void {
    let set = this.#listeners.get(leaseName)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(leaseName, set)
    }
    set.add(listener)
    if (this.#run === undefined) this.#start()
    let subscribed = true
    return () => {
      if (!subscribed) return
      subscribed = false
      set.delete(listener)
      if (set.size === 0) this.#listeners.delete(leaseName)
      if (this.#listeners.size === 0) void this.stop()
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
    run.controller.abort()
    this.#cancelSleep()
    await run.task
    // A subscriber may have started a new run meanwhile; its health is its own.
    if (this.#run === undefined) this.#setHealthy(false)
  }

  #start(): void {
    this.#failed = false
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
    let resourceVersion: string | undefined
    let failures = 0
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          const list = await this.#store.list(this.#namespace, { labelSelector: MANAGED_BY_SELECTOR, signal })
          resourceVersion = list.resourceVersion
          this.#announceList(list.items, list.resourceVersion)
        }
        this.#setHealthy(true)
        const onEvent = (event: LeaseEvent) => {
          if (signal.aborted) return
          failures = 0
          if (event.type === 'BOOKMARK') {
            resourceVersion = event.resourceVersion
            return
          }
          resourceVersion = event.lease.resourceVersion
          this.#emit(event.lease.name, {
            type: 'lease',
            lease: event.type === 'DELETED' ? undefined : event.lease,
            resourceVersion: event.lease.resourceVersion,
          })
        }
        await this.#store.watch(
          this.#namespace,
          { resourceVersion, labelSelector: MANAGED_BY_SELECTOR, signal },
          onEvent,
        )
      } catch (error) {
        if (signal.aborted) break
        this.#setHealthy(false)
        if (error instanceof WatchExpiredError) {
          resourceVersion = undefined
          continue
        }
        failures++
        this.#options.logger.debug?.('lease watch failed; retrying', { namespace: this.#namespace, error })
        const base = this.#options.retryIntervalMs * Math.min(2 ** (failures - 1), 8)
        await this.#sleep(jitter(base, this.#options.random ?? Math.random))
      }
    }
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
  }

  #emit(leaseName: string, event: HubEvent): void {
    const set = this.#listeners.get(leaseName)
    if (set === undefined) return
    for (const listener of [...set]) listener(event)
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeSleep = resolve
      this.#sleepTimer = setTimeout(
        () => {
          this.#sleepTimer = undefined
          this.#wakeSleep = undefined
          resolve()
        },
        Math.max(0, ms),
      )
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

/** A duration spread uniformly over ±50 % of `ms`, so that retrying processes do not stay in step. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return ms * (0.5 + random())
}

/** True if a hub event tells something newer than the resourceVersion the waiter acted on. */
export function isNewer(eventVersion: string, seenVersion: string | undefined): boolean {
  if (seenVersion === undefined || eventVersion === '') return true
  return compareResourceVersions(eventVersion, seenVersion) > 0
}
