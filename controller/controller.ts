import {
  compareResourceVersions,
  isFree,
  isTicket,
  LeaseConflictError,
  type LeaseEvent,
  LeaseNotFoundError,
  type LeaseRecord,
  type LeaseStore,
  type Logger,
  listPaged,
  MANAGED_BY_SELECTOR,
  backoff as sdkBackoff,
  WatchExpiredError,
} from '../sdk/internal.ts'
import type { LockEvent } from './events.ts'
import type { LeaseSource } from './kubernetes.ts'
import { type LeaderElector, sleep } from './leader-election.ts'
import type { ControllerMetrics } from './metrics.ts'
import {
  type ControllerOptions,
  type ResolvedControllerOptions,
  resolveControllerOptions,
} from './options.ts'
import { type Decision, type Observation, observe, reconcile } from './reconcile.ts'
import {
  leaseFields,
  reportExpired,
  reportGarbageCollected,
  reportReclaimed,
  reportTicketDeleted,
} from './report.ts'
import { WorkQueue } from './work-queue.ts'

export interface ControllerDependencies {
  /** Lists and watches managed leases. */
  readonly source: LeaseSource
  /** Frees and deletes leases, always under `{uid, resourceVersion}` preconditions. */
  readonly store: LeaseStore
  readonly elector: LeaderElector
  readonly events: { record(event: LockEvent): void }
  readonly metrics: ControllerMetrics
  readonly logger: Logger
}

const MAX_BACKOFF_MS = 60_000
/** Leases per list request: the answer to one request, parsed at once, stays this small. */
export const LIST_PAGE_SIZE = 500

/**
 * Keeps an in-memory view of the managed leases in scope (list, then watch), and reconciles each
 * lease — keyed by `namespace/name` — whenever it changes or its next deadline comes: an expired lease
 * is marked free, a lease free for the retention period is deleted, a ticket whose waiter is gone is
 * deleted. Every replica keeps the view, so a new leader already knows how long each lease has been
 * unchanged; only the leader writes.
 */
export class Controller {
  readonly #options: ResolvedControllerOptions
  readonly #deps: ControllerDependencies
  readonly #cache = new Map<string, Observation>()
  readonly #synced = new Set<string>()
  readonly #failures = new Map<string, number>()
  /** `uid/resourceVersion` of expiries already counted, so a retried free does not count twice. */
  readonly #expiryNoted = new Map<string, string>()
  readonly #inFlight = new Set<Promise<void>>()
  #queue: WorkQueue | undefined
  #acting: AbortController | undefined
  #held = 0
  #free = 0
  #tickets = 0
  #started = false

  constructor(options: ControllerOptions, dependencies: ControllerDependencies) {
    this.#options = resolveControllerOptions(options)
    this.#deps = dependencies
  }

  /** True once every namespace in scope has been listed. */
  get ready(): boolean {
    return this.#synced.size === this.#scopes().length
  }

  /** True while this replica is the leader and may write. */
  get leading(): boolean {
    return this.#acting !== undefined && !this.#acting.signal.aborted
  }

  /** Managed leases currently known, for tests and the benchmark. */
  get size(): number {
    return this.#cache.size
  }

  /** Runs until `signal` aborts, then stops watches, stops acting, gives up leadership, and returns. */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error('a Controller can be started only once; create a new one')
    this.#started = true
    const { clock, workers } = this.#options
    const queue = new WorkQueue(() => clock.now())
    this.#queue = queue
    const onStop = () => queue.shutDown()
    signal.addEventListener('abort', onStop, { once: true })
    if (signal.aborted) onStop()
    const { logger } = this.#deps
    logger.info?.('controller starting', {
      namespaces: this.#options.namespaces.length === 0 ? 'all' : this.#options.namespaces.join(','),
      retentionSeconds: this.#options.retentionMs / 1000,
      graceSeconds: this.#options.graceMs / 1000,
    })
    const tasks = [
      ...this.#scopes().map((namespace) => this.#inform(namespace, signal)),
      ...Array.from({ length: workers }, () => this.#work(queue)),
      this.#deps.elector.run(signal, {
        onStartedLeading: (leading, identity) => this.#startActing(leading, identity),
        stopActing: () => this.#stopActing(),
      }),
    ]
    await Promise.all(tasks)
    signal.removeEventListener('abort', onStop)
    logger.info?.('controller stopped', {})
  }

  #scopes(): Array<string | undefined> {
    return this.#options.namespaces.length === 0 ? [undefined] : [...this.#options.namespaces]
  }

  #startActing(leading: AbortSignal, identity: string): void {
    const acting = new AbortController()
    this.#acting = acting
    const { metrics, logger } = this.#deps
    metrics.leader.set(1)
    metrics.leaderTransitions.inc()
    leading.addEventListener(
      'abort',
      () => {
        // Stop at once: the lock may pass to another replica from here on.
        acting.abort(leading.reason)
        metrics.leader.set(0)
      },
      { once: true },
    )
    logger.info?.('acting as leader', { holder: identity, leases: this.#cache.size })
    // Decisions skipped while standing by are due now.
    for (const key of this.#cache.keys()) this.#queue?.add(key)
  }

  async #stopActing(): Promise<void> {
    this.#acting?.abort(new Error('leadership ended'))
    this.#acting = undefined
    this.#deps.metrics.leader.set(0)
    await Promise.allSettled([...this.#inFlight])
  }

  // ---- the view: list, then watch; 410 Gone lists again ----

  async #inform(namespace: string | undefined, signal: AbortSignal): Promise<void> {
    const { source, metrics, logger } = this.#deps
    const scope = namespace ?? '*'
    let resourceVersion: string | undefined
    let failures = 0
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          // One consistent snapshot in pages; an expired continuation (410) lists again from the start.
          const list = await listPaged(source, namespace, {
            labelSelector: MANAGED_BY_SELECTOR,
            limit: LIST_PAGE_SIZE,
            signal,
          })
          this.#replace(namespace, list.items)
          resourceVersion = list.resourceVersion
          if (!this.#synced.has(scope)) {
            this.#synced.add(scope)
            logger.info?.('listed leases', {
              namespace: namespace ?? '*',
              leases: list.items.length,
              resourceVersion,
            })
          }
        }
        await source.watch(
          namespace,
          { resourceVersion, labelSelector: MANAGED_BY_SELECTOR, signal },
          (event) => {
            resourceVersion = event.type === 'BOOKMARK' ? event.resourceVersion : event.lease.resourceVersion
            this.#apply(event)
          },
        )
        failures = 0
      } catch (error) {
        if (signal.aborted) break
        if (error instanceof WatchExpiredError) {
          metrics.watchRestarts.inc({ reason: 'expired' })
          logger.info?.('watch expired (410 Gone); listing again', { namespace: namespace ?? '*' })
          resourceVersion = undefined
          continue
        }
        failures += 1
        metrics.watchRestarts.inc({ reason: 'error' })
        const delay = backoff(failures)
        logger.warn?.('lease watch failed; retrying', {
          namespace: namespace ?? '*',
          resourceVersion,
          retryInSeconds: delay / 1000,
          error,
        })
        await sleep(delay, signal)
      }
    }
  }

  #replace(namespace: string | undefined, items: readonly LeaseRecord[]): void {
    const present = new Set<string>()
    for (const record of items) {
      present.add(keyOf(record))
      this.#apply({ type: 'MODIFIED', lease: record })
    }
    for (const [key, observation] of this.#cache) {
      const inScope = namespace === undefined || observation.record.namespace === namespace
      if (inScope && !present.has(key)) this.#apply({ type: 'DELETED', lease: observation.record })
    }
  }

  #apply(event: LeaseEvent): void {
    if (event.type === 'BOOKMARK') return
    const key = keyOf(event.lease)
    const previous = this.#cache.get(key)
    if (event.type === 'DELETED') {
      if (previous === undefined) return
      this.#cache.delete(key)
      this.#count(previous.record, -1)
      this.#failures.delete(key)
      this.#expiryNoted.delete(key)
      this.#queue?.forget(key)
      return
    }
    if (previous !== undefined && isOlder(event.lease, previous.record)) return
    const next = observe(previous, event.lease, this.#options.clock.now())
    if (next === previous) return
    if (previous !== undefined) this.#count(previous.record, -1)
    this.#count(next.record, +1)
    this.#cache.set(key, next)
    if (previous === undefined || previous.record.resourceVersion !== next.record.resourceVersion) {
      this.#failures.delete(key)
    }
    this.#queue?.add(key)
  }

  #count(record: LeaseRecord, delta: number): void {
    if (isTicket(record)) this.#tickets += delta
    else if (isFree(record)) this.#free += delta
    else this.#held += delta
    this.#deps.metrics.leases.set({ state: 'held' }, this.#held)
    this.#deps.metrics.leases.set({ state: 'free' }, this.#free)
    this.#deps.metrics.tickets.set(this.#tickets)
  }

  // ---- reconcile ----

  async #work(queue: WorkQueue): Promise<void> {
    for (;;) {
      const key = await queue.get()
      if (key === undefined) return
      this.#deps.metrics.queueDepth.set(queue.length)
      try {
        await this.#reconcileKey(key, queue)
      } catch (error) {
        this.#deps.logger.error?.('reconcile failed unexpectedly', { key, error })
        queue.addAfter(key, this.#backoffFor(key))
      } finally {
        queue.done(key)
      }
    }
  }

  async #reconcileKey(key: string, queue: WorkQueue): Promise<void> {
    const observation = this.#cache.get(key)
    if (observation === undefined) return
    const { clock } = this.#options
    const decision = reconcile(observation, clock.now(), clock.wallNow(), this.#options)
    switch (decision.kind) {
      case 'wait':
        queue.addAfter(key, decision.requeueAfterMs)
        return
      case 'ignore':
        return
      case 'free':
      case 'delete':
      case 'delete-ticket': {
        const acting = this.#acting
        // A standby keeps its view but never writes; becoming the leader enqueues every lease again.
        if (acting === undefined || acting.signal.aborted) return
        const task = this.#act(key, observation, decision, acting.signal, queue)
        this.#inFlight.add(task)
        try {
          await task
        } finally {
          this.#inFlight.delete(task)
        }
        return
      }
    }
  }

  async #act(
    key: string,
    observation: Observation,
    decision: Extract<Decision, { kind: 'free' | 'delete' | 'delete-ticket' }>,
    acting: AbortSignal,
    queue: WorkQueue,
  ): Promise<void> {
    const { store, metrics, logger } = this.#deps
    const { record } = observation
    const fields = leaseFields(record)
    const signal = AbortSignal.any([acting, AbortSignal.timeout(this.#options.requestTimeoutMs)])
    const action = decision.kind
    if (decision.kind === 'free') {
      const noted = `${record.uid}/${record.resourceVersion}`
      if (this.#expiryNoted.get(key) !== noted) {
        this.#expiryNoted.set(key, noted)
        reportExpired(this.#deps, record, decision.unchangedMs)
      }
    }
    const started = performance.now()
    try {
      switch (decision.kind) {
        case 'free': {
          const written = await store.update(decision.update, { signal })
          reportReclaimed(this.#deps, record, written)
          this.#apply({ type: 'MODIFIED', lease: written })
          break
        }
        case 'delete':
          await store.delete(record.namespace, record.name, decision.preconditions, { signal })
          reportGarbageCollected(this.#deps, record, decision.freeMs, this.#options.retentionMs)
          this.#apply({ type: 'DELETED', lease: record })
          break
        case 'delete-ticket':
          await store.delete(record.namespace, record.name, decision.preconditions, { signal })
          reportTicketDeleted(this.#deps, record, decision.why, decision.unchangedMs)
          this.#apply({ type: 'DELETED', lease: record })
          break
      }
      this.#failures.delete(key)
    } catch (error) {
      if (acting.aborted) return
      if (error instanceof LeaseConflictError) {
        // The lease changed after we looked (renewed, released, taken): the watch brings the new state.
        metrics.conflicts.inc({ action })
        logger.debug?.('lease changed before the write; nothing to do', { ...fields, action })
        return
      }
      if (error instanceof LeaseNotFoundError && decision.kind !== 'free') {
        this.#apply({ type: 'DELETED', lease: record })
        return
      }
      metrics.reconcileErrors.inc({ action })
      const delay = this.#backoffFor(key)
      logger.warn?.(`could not ${action} the lease; retrying`, {
        ...fields,
        retryInSeconds: delay / 1000,
        error,
      })
      queue.addAfter(key, delay)
    } finally {
      metrics.reconcileDuration.observe({ action }, (performance.now() - started) / 1000)
    }
  }

  #backoffFor(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1
    this.#failures.set(key, failures)
    return backoff(failures)
  }
}

function keyOf(record: Pick<LeaseRecord, 'namespace' | 'name'>): string {
  return `${record.namespace}/${record.name}`
}

function isOlder(next: LeaseRecord, current: LeaseRecord): boolean {
  if (next.uid !== current.uid) return false
  try {
    return compareResourceVersions(next.resourceVersion, current.resourceVersion) < 0
  } catch {
    return false
  }
}

/** 0.5 s doubling to {@link MAX_BACKOFF_MS}, with ±20 % jitter so replicas and leases spread out. */
function backoff(failures: number): number {
  return Math.round(sdkBackoff(failures, { baseMs: 500, maxFactor: MAX_BACKOFF_MS / 500, spread: 0.2 }))
}
